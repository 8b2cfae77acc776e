// The end-to-end tests' provided.al2023 function: a Go `bootstrap` speaking the Lambda
// Runtime API with the standard library only (as a function built without aws-lambda-go).
// It runs the same steps as app.py where Go has an equivalent:
//
//	{"print": [str]}  one line on stdout each
//	{"stderr": [str]} one line on stderr each
//	{"burst": {"prefix", "count", "width"}}  "<prefix>-<i:06d> " padded with dots to width
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

type step struct {
	Print  []string `json:"print"`
	Stderr []string `json:"stderr"`
	Burst  *struct {
		Prefix string `json:"prefix"`
		Count  int    `json:"count"`
		Width  int    `json:"width"`
	} `json:"burst"`
}

type event struct {
	Steps []step `json:"steps"`
}

func main() {
	api := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime/invocation/"
	out := bufio.NewWriterSize(os.Stdout, 64*1024)
	for {
		resp, err := http.Get(api + "next")
		if err != nil {
			fmt.Fprintln(os.Stderr, "next failed:", err)
			os.Exit(1)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
		var ev event
		if err := json.Unmarshal(body, &ev); err != nil {
			post(api+id+"/error", []byte(`{"errorType":"BadEvent","errorMessage":"not JSON"}`))
			continue
		}
		for _, s := range ev.Steps {
			for _, text := range s.Print {
				fmt.Fprintln(out, text)
			}
			for _, text := range s.Stderr {
				fmt.Fprintln(os.Stderr, text)
			}
			if b := s.Burst; b != nil {
				for i := 0; i < b.Count; i++ {
					head := fmt.Sprintf("%s-%06d ", b.Prefix, i)
					pad := b.Width - len(head)
					if pad < 0 {
						pad = 0
					}
					fmt.Fprintln(out, head+strings.Repeat(".", pad))
				}
			}
		}
		// Everything written before the response, as a function's output is.
		out.Flush()
		doc, _ := json.Marshal(map[string]any{"ok": true, "request_id": id})
		post(api+id+"/response", doc)
	}
}

func post(url string, body []byte) {
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		fmt.Fprintln(os.Stderr, "post failed:", err)
		os.Exit(1)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}
