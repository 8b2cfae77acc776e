package ext

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"testing"
)

// testdata/records_parity.json holds the Python build's entries for the same deliveries
// (written by tests/extension_native/test_records_parity.py, which also fails when they go
// stale): the native build must produce the same lines, timestamps, streams and metadata.
func TestRecordsParityWithPythonBuild(t *testing.T) {
	raw, err := os.ReadFile("testdata/records_parity.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Name    string `json:"name"`
		Options struct {
			ShipPlatform     bool  `json:"ship_platform"`
			ShipExtension    bool  `json:"ship_extension"`
			MaxLineBytes     int   `json:"max_line_bytes"`
			AttributeByStart *bool `json:"attribute_by_start"`
		} `json:"options"`
		Steps []struct {
			Body                 string     `json:"body"`
			Entries              [][]any    `json:"entries"`
			RuntimeDone          [][]string `json:"runtime_done"`
			LambdaDroppedRecords int        `json:"lambda_dropped_records"`
		} `json:"steps"`
	}
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) < 10 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, c := range cases {
		maxLine := c.Options.MaxLineBytes
		if maxLine == 0 {
			maxLine = 256000
		}
		managed := c.Options.AttributeByStart != nil && !*c.Options.AttributeByStart
		conv := NewConverter(c.Options.ShipPlatform, c.Options.ShipExtension, maxLine, managed)
		for i, step := range c.Steps {
			out := conv.Convert([]byte(step.Body))
			got := make([][]any, 0, len(out.Entries))
			for _, e := range out.Entries {
				meta := []any{}
				if e.Meta != nil {
					for _, kv := range e.Meta.pairs() {
						meta = append(meta, []any{kv[0], kv[1]})
					}
				}
				got = append(got, []any{float64(e.Stream), strconv.FormatInt(e.Ts, 10), e.Line, meta})
			}
			want := step.Entries
			if want == nil {
				want = [][]any{}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s, delivery %d:\n got %s\nwant %s", c.Name, i, show(got), show(want))
			}
			done := [][]string{}
			for _, rd := range out.RuntimeDone {
				done = append(done, []string{rd.RequestID, strconv.FormatInt(rd.TimeNs, 10)})
			}
			wantDone := step.RuntimeDone
			if wantDone == nil {
				wantDone = [][]string{}
			}
			if !reflect.DeepEqual(done, wantDone) || out.LambdaDroppedRecords != step.LambdaDroppedRecords {
				t.Errorf("%s, delivery %d: runtimeDone %v dropped %d, want %v %d", c.Name, i, done,
					out.LambdaDroppedRecords, wantDone, step.LambdaDroppedRecords)
			}
		}
	}
}

func show(v any) string {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
