package ext

import (
	"reflect"
	"testing"
	"time"
)

// The expected texts are the Python build's config.load output for the same environments,
// word for word (both builds must say the same thing).
func TestConfigProblemsMatchPythonBuild(t *testing.T) {
	cases := []struct {
		env  map[string]string
		url  string
		want []string
	}{
		{map[string]string{"DISPATCH_MIN_BATCH_SIZE": "abc", "LOKI_URL": "http://l:3100"}, "http://l:3100/loki/api/v1/push",
			[]string{"DISPATCH_MIN_BATCH_SIZE must be an integer from 1 to 10000, got 'abc'; using 100"}},
		{map[string]string{"DISPATCH_MIN_BATCH_SIZE": "0", "LOKI_IP": "10.0.0.1"}, "http://10.0.0.1:3100/loki/api/v1/push",
			[]string{"DISPATCH_MIN_BATCH_SIZE must be an integer from 1 to 10000, got '0'; using 100"}},
		{map[string]string{"LOKI_SHIP_BEFORE_FREEZE": "maybe", "LOKI_URL": "http://l"}, "http://l/loki/api/v1/push",
			[]string{"LOKI_SHIP_BEFORE_FREEZE must be true or false, got 'maybe'; using false"}},
		{map[string]string{"LOKI_URL": "ftp://x"}, "",
			[]string{"LOKI_URL must be an http:// or https:// URL with a host, got 'ftp://x'; logs will not be shipped"}},
		{map[string]string{"LOKI_IP": "a b"}, "",
			[]string{"LOKI_IP must be a host name or IP address, got 'a b'; logs will not be shipped"}},
		{map[string]string{}, "",
			[]string{"no Loki endpoint: set LOKI_URL (full push URL) or LOKI_IP; logs will not be shipped"}},
		{map[string]string{"LOKI_URL": "http://l", "LOKI_IP": "1.2.3.4"}, "http://l/loki/api/v1/push",
			[]string{"both LOKI_URL and LOKI_IP are set; using LOKI_URL"}},
		{map[string]string{"LOKI_URL": "http://l", "LOKI_TELEMETRY_TYPES": "function,bogus"}, "http://l/loki/api/v1/push",
			[]string{"LOKI_TELEMETRY_TYPES: unknown type 'bogus' (allowed: platform, function, extension); ignoring it"}},
		{map[string]string{"LOKI_URL": "http://l", "LOKI_TELEMETRY_TYPES": "nope"}, "http://l/loki/api/v1/push",
			[]string{"LOKI_TELEMETRY_TYPES: unknown type 'nope' (allowed: platform, function, extension); ignoring it",
				"LOKI_TELEMETRY_TYPES names no known type; using function"}},
		{map[string]string{"LOKI_URL": "http://l", "LOKI_LABELS": "[1]"}, "http://l/loki/api/v1/push",
			[]string{`LOKI_LABELS must be a JSON object like {"env": "prod"}, got '[1]'; ignoring it`}},
		{map[string]string{"LOKI_URL": "http://l", "LOKI_LABELS": `{"env":"prod","9x":"a","source":"s","n":1.5,"b":true,"l":[1],"__x":"y"}`},
			"http://l/loki/api/v1/push", []string{
				"LOKI_LABELS: label name '9x' must match ^[a-zA-Z_][a-zA-Z0-9_]*$ and not start with '__'; skipping it",
				"LOKI_LABELS: label 'source' is set by the extension itself; skipping it",
				"LOKI_LABELS: label 'b' must have a string value, got bool; skipping it",
				"LOKI_LABELS: label 'l' must have a string value, got list; skipping it",
				"LOKI_LABELS: label name '__x' must match ^[a-zA-Z_][a-zA-Z0-9_]*$ and not start with '__'; skipping it",
			}},
		{map[string]string{"LOKI_URL": "http://l", "LOKI_BASIC_AUTH_SECRET_ARN": "arn:aws:s3:::x"}, "",
			[]string{"LOKI_BASIC_AUTH_SECRET_ARN must be the ARN of a Secrets Manager secret or an SSM parameter, got 'arn:aws:s3:::x'; logs will not be shipped"}},
		{map[string]string{"LOKI_URL": "http://l", "LOKI_TENANT_ID": "a\nb"}, "http://l/loki/api/v1/push",
			[]string{"LOKI_TENANT_ID must not contain line breaks; ignoring it"}},
		{map[string]string{"LOKI_URL": "http://l", "LOKI_MAX_BUFFER_BYTES": "1_000_000"}, "http://l/loki/api/v1/push", nil},
		{map[string]string{"LOKI_URL": "http://l", "LOKI_BUFFER_TIMEOUT_MS": "it's", "LOKI_FLUSH": "batch"}, "http://l/loki/api/v1/push",
			[]string{`LOKI_BUFFER_TIMEOUT_MS must be an integer from 25 to 30000, got "it's"; using 100`}},
	}
	for _, c := range cases {
		cfg := LoadConfig(c.env)
		if cfg.URL != c.url {
			t.Errorf("%v: url %q, want %q", c.env, cfg.URL, c.url)
		}
		if !reflect.DeepEqual(cfg.Problems, c.want) {
			t.Errorf("%v:\n got %q\nwant %q", c.env, cfg.Problems, c.want)
		}
	}
}

func TestConfigValuesAndLabels(t *testing.T) {
	cfg := LoadConfig(map[string]string{"LOKI_URL": "https://u:p@h/x", "LOKI_LABELS": `{"z":"1","a":2,"e":""}`,
		"LOKI_MAX_BUFFER_BYTES": "1_000_000", "LOKI_FLUSH_INTERVAL_MS": " 250 ", "AWS_LAMBDA_FUNCTION_NAME": "fn"})
	if cfg.URL != "https://u:p@h/x" || cfg.MaxBufferBytes != 1000000 || cfg.FlushInterval != 250*time.Millisecond ||
		cfg.FunctionName != "fn" {
		t.Fatalf("unexpected %+v", cfg)
	}
	if !reflect.DeepEqual(cfg.Labels, [][2]string{{"a", "2"}, {"z", "1"}}) {
		t.Fatalf("labels %v", cfg.Labels)
	}
}

func TestFlushModeResolution(t *testing.T) {
	cases := []struct {
		env     map[string]string
		mode    string
		timeout int
		problem string
	}{
		{map[string]string{}, FlushAdaptive, 25, ""},
		{map[string]string{"LOKI_SHIP_BEFORE_FREEZE": "true"}, FlushEndOfInvoke, 25, ""},
		{map[string]string{"LOKI_SHIP_BEFORE_FREEZE": "false"}, FlushBatch, 100, ""},
		{map[string]string{"LOKI_SHIP_BEFORE_FREEZE": " ", "LOKI_FLUSH": ""}, FlushAdaptive, 25, ""},
		{map[string]string{"LOKI_FLUSH": " Batch "}, FlushBatch, 100, ""},
		{map[string]string{"LOKI_FLUSH": "batch", "LOKI_SHIP_BEFORE_FREEZE": "true"}, FlushBatch, 100, ""},
		{map[string]string{"LOKI_FLUSH": "end_of_invoke", "LOKI_BUFFER_TIMEOUT_MS": "300"}, FlushEndOfInvoke, 300, ""},
		{map[string]string{"LOKI_FLUSH": "sometimes"}, FlushAdaptive, 25,
			"LOKI_FLUSH must be one of adaptive, end_of_invoke, batch, got 'sometimes'; using adaptive"},
		{map[string]string{"LOKI_FLUSH": "end_of_invoke", "AWS_LAMBDA_INITIALIZATION_TYPE": "lambda-managed-instances"}, FlushBatch, 100,
			"LOKI_FLUSH=end_of_invoke has no effect on Lambda Managed Instances; flushing on time and size"},
	}
	for _, c := range cases {
		c.env["LOKI_URL"] = "http://l"
		cfg := LoadConfig(c.env)
		if cfg.Flush != c.mode || cfg.BufferTimeoutMs != c.timeout {
			t.Errorf("%v: mode %s timeout %d, want %s %d", c.env, cfg.Flush, cfg.BufferTimeoutMs, c.mode, c.timeout)
		}
		got := ""
		if len(cfg.Problems) > 0 {
			got = cfg.Problems[0]
		}
		if got != c.problem {
			t.Errorf("%v: problem %q, want %q", c.env, got, c.problem)
		}
	}
}

func TestCredentialsOnlyOverHTTPS(t *testing.T) {
	arn := "arn:aws:secretsmanager:eu-west-1:123456789012:secret:loki-abc"
	cfg := LoadConfig(map[string]string{"LOKI_URL": "http://loki.example.com:3100", "LOKI_BASIC_AUTH_SECRET_ARN": arn})
	if cfg.URL != "" || len(cfg.Problems) != 1 ||
		cfg.Problems[0] != "refusing to send credentials over http:// to loki.example.com; use an https:// LOKI_URL" {
		t.Fatalf("http to a remote host with credentials: url %q problems %q", cfg.URL, cfg.Problems)
	}
	for _, ok := range []string{"http://127.0.0.1:3100", "http://localhost:3100", "http://[::1]:3100", "https://loki.example.com"} {
		cfg := LoadConfig(map[string]string{"LOKI_URL": ok, "LOKI_BEARER_TOKEN_SECRET_ARN": arn})
		if cfg.URL == "" || len(cfg.Problems) != 0 {
			t.Errorf("%s should be allowed: %q", ok, cfg.Problems)
		}
	}
}
