package ext

import (
	"encoding/json"
	"os"
	"reflect"
	"testing"
)

// testdata/config_parity.json holds the Python build's config.load answers for the same
// environments (written by tests/extension_native/test_config_parity.py, which also fails when
// they go stale): the native build must read every one the same way and say the same words.
func TestConfigParityWithPythonBuild(t *testing.T) {
	raw, err := os.ReadFile("testdata/config_parity.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Env             map[string]string `json:"env"`
		URL             string            `json:"url"`
		Flush           string            `json:"flush"`
		BufferTimeoutMs int               `json:"buffer_timeout_ms"`
		BatchSize       int               `json:"batch_size"`
		MaxBufferBytes  int               `json:"max_buffer_bytes"`
		TelemetryTypes  []string          `json:"telemetry_types"`
		Labels          [][2]string       `json:"labels"`
		TenantID        string            `json:"tenant_id"`
		Problems        []string          `json:"problems"`
	}
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) < 40 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, c := range cases {
		cfg := LoadConfig(c.Env)
		labels := cfg.Labels
		if labels == nil {
			labels = [][2]string{}
		}
		problems := cfg.Problems
		if problems == nil {
			problems = []string{}
		}
		got := []any{cfg.URL, cfg.Flush, cfg.BufferTimeoutMs, cfg.BatchSize, cfg.MaxBufferBytes, cfg.TelemetryTypes, labels, cfg.TenantID, problems}
		want := []any{c.URL, c.Flush, c.BufferTimeoutMs, c.BatchSize, c.MaxBufferBytes, c.TelemetryTypes, c.Labels, c.TenantID, c.Problems}
		if c.Labels == nil {
			want[6] = [][2]string{}
		}
		if c.Problems == nil {
			want[8] = []string{}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("env %v\n got %q\nwant %q", c.Env, got, want)
		}
	}
}
