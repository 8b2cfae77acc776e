// A static test extension for the emulator's sandbox and arm64 tests: registers, reports
// what it can see of the filesystem, waits in next, exits at SHUTDOWN. Standard library only.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

func main() {
	api := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2020-01-01/extension/"
	name := filepath.Base(os.Args[0])
	body, _ := json.Marshal(map[string][]string{"events": {"INVOKE", "SHUTDOWN"}})
	req, _ := http.NewRequest("POST", api+"register", bytes.NewReader(body))
	req.Header.Set("Lambda-Extension-Name", name)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		fmt.Fprintln(os.Stderr, "register failed:", err)
		os.Exit(1)
	}
	resp.Body.Close()
	id := resp.Header.Get("Lambda-Extension-Identifier")

	python, err := exec.LookPath("python3")
	if err != nil {
		python = "none"
	}
	var shells []string
	for _, p := range []string{"/bin/sh", "/usr/bin/python3", "/usr/bin/env", "/usr/lib"} {
		if _, err := os.Stat(p); err == nil {
			shells = append(shells, p)
		}
	}
	entries, _ := os.ReadDir("/")
	var top []string
	for _, e := range entries {
		top = append(top, e.Name())
	}
	_ = os.WriteFile("/tmp/"+name+".arch", []byte(runtime.GOARCH), 0o644)
	fmt.Printf("%s ready arch=%s python3=%s found=%s root=%s\n",
		name, runtime.GOARCH, python, strings.Join(shells, ","), strings.Join(top, ","))

	for {
		req, _ := http.NewRequest("GET", api+"event/next", nil)
		req.Header.Set("Lambda-Extension-Identifier", id)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			os.Exit(1)
		}
		var evt map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&evt)
		resp.Body.Close()
		if evt["eventType"] == "SHUTDOWN" {
			fmt.Printf("%s shutdown\n", name)
			os.Exit(0)
		}
	}
}
