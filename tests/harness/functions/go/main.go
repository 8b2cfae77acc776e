// A provided.al2023 function for the emulator's tests: the Runtime API loop with the
// standard library only, as a Go `bootstrap` does without aws-lambda-go.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
)

func main() {
	api := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime/invocation/"
	fmt.Println("go init line")
	for {
		resp, err := http.Get(api + "next")
		if err != nil {
			fmt.Fprintln(os.Stderr, "next failed:", err)
			os.Exit(1)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
		var event map[string]any
		_ = json.Unmarshal(body, &event)
		lines, _ := event["lines"].(float64)
		for i := 0; i < int(lines); i++ {
			fmt.Printf("go line %d of %s\n", i, id)
		}
		if msg, ok := event["fail"].(string); ok {
			doc, _ := json.Marshal(map[string]string{"errorType": "GoError", "errorMessage": msg})
			post(api+id+"/error", doc)
			continue
		}
		out, _ := json.Marshal(map[string]any{"ok": true, "echo": event["echo"], "runtime": "go"})
		post(api+id+"/response", out)
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
