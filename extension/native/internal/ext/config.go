package ext

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	ev "lokitelemetry/internal/envvars"
)

// Flush modes (envvars.FLUSH_MODES).
const (
	FlushAdaptive    = "adaptive"
	FlushEndOfInvoke = "end_of_invoke"
	FlushBatch       = "batch"
)

// Config is the environment read once (config.py's Config). It never fails: every bad value
// becomes a message in Problems and the safe default is used.
type Config struct {
	URL              string // push URL; "" when no (valid) endpoint is configured: no-op
	BatchSize        int
	FlushInterval    time.Duration
	Flush            string
	DenseGapMs       int
	HighWaterPercent int
	MaxBufferBytes   int
	TelemetryTypes   []string
	BufferMaxItems   int
	BufferMaxBytes   int
	BufferTimeoutMs  int
	Labels           [][2]string // sorted by name, reserved names excluded
	TenantID         string
	BasicAuthARN     string
	BearerTokenARN   string
	MaxLineBytes     int
	FunctionName     string
	ManagedInstances bool
	Problems         []string
}

// HasType reports whether the user asked to ship records of this telemetry type.
func (c *Config) HasType(t string) bool {
	for _, x := range c.TelemetryTypes {
		if x == t {
			return true
		}
	}
	return false
}

type env map[string]string

func (e env) get(name string) (string, bool) {
	v, ok := e[name]
	return v, ok
}

var (
	trueWords  = []string{"1", "true", "yes", "on"}
	falseWords = []string{"0", "false", "no", "off", ""}
)

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// pyInt parses like Python's int(str): optional sign, digits, single underscores between digits.
func pyInt(s string) (int, bool) {
	if strings.Contains(s, "_") {
		if strings.HasPrefix(s, "_") || strings.HasSuffix(s, "_") || strings.Contains(s, "__") ||
			strings.Contains(s, "+_") || strings.Contains(s, "-_") {
			return 0, false
		}
		s = strings.ReplaceAll(s, "_", "")
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, false
	}
	return int(v), true
}

// setting is name's row of the range table (envvars.SETTINGS).
func setting(name string) ev.Setting {
	s, ok := ev.SETTINGS[name]
	if !ok {
		panic("envvars.SETTINGS has no row for " + name) // a typo here, caught by every config test
	}
	return s
}

// cfgInt reads the integer variable name within its row of envvars.SETTINGS, falling back to the
// row's default (cfgIntOr: to def).
func cfgInt(e env, name string, problems *[]string) int {
	return cfgIntOr(e, name, setting(name).Default, problems)
}

func cfgIntOr(e env, name string, def int, problems *[]string) int {
	s := setting(name)
	raw, ok := e.get(name)
	if !ok || strings.TrimSpace(raw) == "" {
		return def
	}
	v, good := pyInt(strings.TrimSpace(raw))
	if !good || v < s.Minimum || v > s.Maximum {
		*problems = append(*problems, fmt.Sprintf("%s must be an integer from %d to %d, got %s; using %d",
			name, s.Minimum, s.Maximum, pyRepr(raw), def))
		return def
	}
	return v
}

func cfgBool(e env, name string, def bool, problems *[]string) bool {
	raw, ok := e.get(name)
	if !ok {
		return def
	}
	low := strings.ToLower(strings.TrimSpace(raw))
	if contains(trueWords, low) {
		return true
	}
	if contains(falseWords, low) {
		return false
	}
	*problems = append(*problems, fmt.Sprintf("%s must be true or false, got %s; using %t", name, pyRepr(raw), def))
	return def
}

func isLabelName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alpha := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
		if !alpha && !(i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func truncRunes(s string, n int) string {
	i := 0
	for pos := range s {
		if i == n {
			return s[:pos]
		}
		i++
	}
	return s
}

// orderedObject decodes a JSON object keeping its key order (Python dicts keep it too, and
// the problem messages and the label budget depend on it).
func orderedObject(raw string) ([]string, map[string]any, bool) {
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, nil, false
	}
	var keys []string
	values := map[string]any{}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, nil, false
		}
		k, _ := kt.(string)
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, nil, false
		}
		if _, seen := values[k]; !seen {
			keys = append(keys, k)
		}
		values[k] = v
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, nil, false
	}
	if _, err := dec.Token(); err == nil {
		return nil, nil, false // trailing data: json.loads would refuse it
	}
	return keys, values, true
}

func cfgLabels(e env, problems *[]string) [][2]string {
	raw := strings.TrimSpace(e[ev.LOKI_LABELS])
	if raw == "" {
		return nil
	}
	keys, values, ok := orderedObject(raw)
	if !ok {
		*problems = append(*problems, fmt.Sprintf(`%s must be a JSON object like {"env": "prod"}, got %s; ignoring it`,
			ev.LOKI_LABELS, pyRepr(truncRunes(raw, 100))))
		return nil
	}
	out := map[string]string{}
	budget := ev.MAX_LABELS - len(ev.RESERVED_LABELS)
	for _, name := range keys {
		value := values[name]
		var str string
		isScalar := false
		switch v := value.(type) {
		case string:
			str, isScalar = v, true
		case json.Number:
			str, isScalar = pyNumber(v), true
		}
		switch {
		case !isLabelName(name) || strings.HasPrefix(name, "__"):
			*problems = append(*problems, fmt.Sprintf("%s: label name %s must match %s and not start with '__'; skipping it",
				ev.LOKI_LABELS, pyRepr(name), ev.LABEL_NAME_PATTERN))
		case contains(ev.RESERVED_LABELS, name):
			*problems = append(*problems, fmt.Sprintf("%s: label %s is set by the extension itself; skipping it",
				ev.LOKI_LABELS, pyRepr(name)))
		case !isScalar:
			*problems = append(*problems, fmt.Sprintf("%s: label %s must have a string value, got %s; skipping it",
				ev.LOKI_LABELS, pyRepr(name), pyTypeName(value)))
		case str == "":
			// Loki drops empty labels anyway
		case len(out) >= budget:
			*problems = append(*problems, fmt.Sprintf("%s: more than %d labels in total (with %s); skipping %s",
				ev.LOKI_LABELS, ev.MAX_LABELS, strings.Join(ev.RESERVED_LABELS, ", "), pyRepr(name)))
		default:
			out[name] = str
		}
	}
	names := make([]string, 0, len(out))
	for n := range out {
		names = append(names, n)
	}
	sort.Strings(names)
	labels := make([][2]string, 0, len(names))
	for _, n := range names {
		labels = append(labels, [2]string{n, out[n]})
	}
	return labels
}

func hasSpace(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool {
		return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f' ||
			r == 0x1c || r == 0x1d || r == 0x1e || r == 0x1f || r == 0x85 || r == 0xa0 ||
			r == 0x1680 || (r >= 0x2000 && r <= 0x200a) || r == 0x2028 || r == 0x2029 ||
			r == 0x202f || r == 0x205f || r == 0x3000
	}) >= 0
}

func cfgURL(e env, problems *[]string) string {
	url := strings.TrimSpace(e[ev.LOKI_URL])
	ip := strings.TrimSpace(e[ev.LOKI_IP])
	if url != "" && ip != "" {
		*problems = append(*problems, fmt.Sprintf("both %s and %s are set; using %s", ev.LOKI_URL, ev.LOKI_IP, ev.LOKI_URL))
	}
	if url != "" {
		scheme, rest, sep := strings.Cut(url, "://")
		host := rest
		if i := strings.IndexByte(host, '/'); i >= 0 {
			host = host[:i]
		}
		if i := strings.LastIndexByte(host, '@'); i >= 0 {
			host = host[i+1:]
		}
		s := strings.ToLower(scheme)
		if !sep || (s != "http" && s != "https") || host == "" || hasSpace(url) {
			*problems = append(*problems, fmt.Sprintf("%s must be an http:// or https:// URL with a host, got %s; logs will not be shipped",
				ev.LOKI_URL, pyRepr(url)))
			return ""
		}
		if strings.Contains(rest, "/") {
			return url
		}
		return url + ev.LOKI_PUSH_PATH
	}
	if ip != "" {
		if hasSpace(ip) || strings.ContainsAny(ip, "/@?#") {
			*problems = append(*problems, fmt.Sprintf("%s must be a host name or IP address, got %s; logs will not be shipped",
				ev.LOKI_IP, pyRepr(ip)))
			return ""
		}
		host := ip
		if strings.Contains(ip, ":") && !strings.HasPrefix(ip, "[") {
			host = "[" + ip + "]"
		}
		return fmt.Sprintf("http://%s:%d%s", host, ev.LOKI_IP_PORT, ev.LOKI_PUSH_PATH)
	}
	*problems = append(*problems, fmt.Sprintf("no Loki endpoint: set %s (full push URL) or %s; logs will not be shipped",
		ev.LOKI_URL, ev.LOKI_IP))
	return ""
}

func cfgTypes(e env, problems *[]string) []string {
	raw, ok := e.get(ev.LOKI_TELEMETRY_TYPES)
	if !ok || strings.TrimSpace(raw) == "" {
		return append([]string(nil), ev.DEFAULT_TELEMETRY_TYPES...)
	}
	var chosen []string
	for _, part := range strings.Split(raw, ",") {
		t := strings.ToLower(strings.TrimSpace(part))
		if contains(ev.TELEMETRY_TYPES, t) {
			if !contains(chosen, t) {
				chosen = append(chosen, t)
			}
		} else if t != "" {
			*problems = append(*problems, fmt.Sprintf("%s: unknown type %s (allowed: %s); ignoring it",
				ev.LOKI_TELEMETRY_TYPES, pyRepr(strings.TrimSpace(part)), strings.Join(ev.TELEMETRY_TYPES, ", ")))
		}
	}
	if len(chosen) == 0 {
		*problems = append(*problems, fmt.Sprintf("%s names no known type; using %s",
			ev.LOKI_TELEMETRY_TYPES, strings.Join(ev.DEFAULT_TELEMETRY_TYPES, ",")))
		return append([]string(nil), ev.DEFAULT_TELEMETRY_TYPES...)
	}
	return chosen
}

// cfgARN returns the ARN, "" when unset, or "!" when set but unusable (fatal misconfiguration).
func cfgARN(e env, name string, problems *[]string) string {
	raw := strings.TrimSpace(e[name])
	if raw == "" {
		return ""
	}
	parts := strings.Split(raw, ":")
	if len(parts) < 6 || parts[0] != "arn" || (parts[2] != "secretsmanager" && parts[2] != "ssm") {
		*problems = append(*problems, fmt.Sprintf("%s must be the ARN of a Secrets Manager secret or an SSM parameter, got %s; logs will not be shipped",
			name, pyRepr(truncRunes(raw, 200))))
		return "!"
	}
	return raw
}

// cfgFlush resolves the flush mode: LOKI_FLUSH, else the legacy LOKI_SHIP_BEFORE_FREEZE, else adaptive.
func cfgFlush(e env, problems *[]string) string {
	raw, ok := e.get(ev.LOKI_FLUSH)
	if ok && strings.TrimSpace(raw) != "" {
		mode := strings.ToLower(strings.TrimSpace(raw))
		if contains(ev.FLUSH_MODES, mode) {
			return mode
		}
		*problems = append(*problems, fmt.Sprintf("%s must be one of %s, got %s; using %s",
			ev.LOKI_FLUSH, strings.Join(ev.FLUSH_MODES, ", "), pyRepr(raw), ev.DEFAULT_FLUSH))
		return ev.DEFAULT_FLUSH
	}
	if raw, set := e.get(ev.LOKI_SHIP_BEFORE_FREEZE); set && strings.TrimSpace(raw) != "" {
		if cfgBool(e, ev.LOKI_SHIP_BEFORE_FREEZE, ev.DEFAULT_SHIP_BEFORE_FREEZE, problems) {
			return FlushEndOfInvoke
		}
		return FlushBatch
	}
	return ev.DEFAULT_FLUSH
}

// isLoopback: 127.0.0.0/8, localhost, ::1 (credentials may go over plain http only to these).
func isLoopback(host string) bool {
	h := strings.ToLower(strings.Trim(host, "[]"))
	if h == "localhost" || h == "::1" {
		return true
	}
	if strings.HasPrefix(h, "127.") {
		parts := strings.Split(h, ".")
		if len(parts) != 4 {
			return false
		}
		for _, p := range parts {
			if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 255 {
				return false
			}
		}
		return true
	}
	return false
}

// urlHost is the host of an http(s) URL without userinfo, port or brackets.
func urlHost(url string) string {
	_, rest, _ := strings.Cut(url, "://")
	authority := rest
	if i := strings.IndexByte(authority, '/'); i >= 0 {
		authority = authority[:i]
	}
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		authority = authority[i+1:]
	}
	host, _ := splitHostPort(authority, 0)
	return host
}

// splitHostPort splits "host[:port]" / "[v6][:port]"; a missing or bad port gives def.
func splitHostPort(hostport string, def int) (string, int) {
	if strings.HasPrefix(hostport, "[") {
		end := strings.IndexByte(hostport, ']')
		if end < 0 {
			return hostport, def
		}
		host := hostport[1:end]
		rest := hostport[end+1:]
		if strings.HasPrefix(rest, ":") {
			if p, err := strconv.Atoi(rest[1:]); err == nil {
				return host, p
			}
		}
		return host, def
	}
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 && strings.Count(hostport, ":") == 1 {
		if p, err := strconv.Atoi(hostport[i+1:]); err == nil {
			return hostport[:i], p
		}
		return hostport[:i], def
	}
	return hostport, def
}

// LoadConfig reads every variable once; problems are in Config.Problems (the caller reports them).
func LoadConfig(environ map[string]string) *Config {
	e := env(environ)
	var problems []string
	c := &Config{}
	c.ManagedInstances = strings.TrimSpace(e[ev.AWS_LAMBDA_INITIALIZATION_TYPE]) == ev.MANAGED_INSTANCES
	c.Flush = cfgFlush(e, &problems)
	if c.ManagedInstances {
		// Managed Instances are never frozen: always the background sender on time and size.
		if strings.ToLower(strings.TrimSpace(e[ev.LOKI_FLUSH])) == FlushEndOfInvoke {
			problems = append(problems, fmt.Sprintf("%s=%s has no effect on Lambda Managed Instances; flushing on time and size",
				ev.LOKI_FLUSH, FlushEndOfInvoke))
		}
		c.Flush = FlushBatch
	}
	// end_of_invoke and adaptive wait for runtimeDone, which the Telemetry API holds back for up
	// to timeoutMs: unless the user chose a value, use the smallest AWS allows (25 ms, not 100).
	timeoutDefault := setting(ev.LOKI_BUFFER_TIMEOUT_MS).Default
	if c.Flush != FlushBatch {
		timeoutDefault = setting(ev.LOKI_BUFFER_TIMEOUT_MS).Minimum
	}
	c.URL = cfgURL(e, &problems)
	basic := cfgARN(e, ev.LOKI_BASIC_AUTH_SECRET_ARN, &problems)
	bearer := cfgARN(e, ev.LOKI_BEARER_TOKEN_SECRET_ARN, &problems)
	if basic != "" && basic != "!" && bearer != "" && bearer != "!" {
		problems = append(problems, fmt.Sprintf("both %s and %s are set; using basic auth",
			ev.LOKI_BASIC_AUTH_SECRET_ARN, ev.LOKI_BEARER_TOKEN_SECRET_ARN))
		bearer = ""
	}
	if basic == "!" || bearer == "!" {
		c.URL = "" // pushing without the credentials the user asked for would only earn 401s
		basic, bearer = "", ""
	}
	c.BasicAuthARN, c.BearerTokenARN = basic, bearer
	if c.URL != "" && (basic != "" || bearer != "") && strings.HasPrefix(strings.ToLower(c.URL), "http://") {
		if host := urlHost(c.URL); !isLoopback(host) {
			problems = append(problems, fmt.Sprintf("refusing to send credentials over http:// to %s; use an https:// %s",
				host, ev.LOKI_URL))
			c.URL = ""
		}
	}
	tenant := strings.TrimSpace(e[ev.LOKI_TENANT_ID])
	if strings.ContainsAny(tenant, "\r\n") {
		problems = append(problems, fmt.Sprintf("%s must not contain line breaks; ignoring it", ev.LOKI_TENANT_ID))
		tenant = ""
	}
	c.TenantID = tenant
	c.BatchSize = cfgInt(e, ev.DISPATCH_MIN_BATCH_SIZE, &problems)
	c.FlushInterval = time.Duration(cfgInt(e, ev.LOKI_FLUSH_INTERVAL_MS, &problems)) * time.Millisecond
	c.DenseGapMs = cfgInt(e, ev.LOKI_DENSE_GAP_MS, &problems)
	c.HighWaterPercent = cfgInt(e, ev.LOKI_HIGH_WATER_PERCENT, &problems)
	c.MaxBufferBytes = cfgInt(e, ev.LOKI_MAX_BUFFER_BYTES, &problems)
	c.TelemetryTypes = cfgTypes(e, &problems)
	c.BufferMaxItems = cfgInt(e, ev.LOKI_BUFFER_MAX_ITEMS, &problems)
	c.BufferMaxBytes = cfgInt(e, ev.LOKI_BUFFER_MAX_BYTES, &problems)
	c.BufferTimeoutMs = cfgIntOr(e, ev.LOKI_BUFFER_TIMEOUT_MS, timeoutDefault, &problems)
	c.Labels = cfgLabels(e, &problems)
	c.MaxLineBytes = cfgInt(e, ev.LOKI_MAX_LINE_BYTES, &problems)
	c.FunctionName = strings.TrimSpace(e["AWS_LAMBDA_FUNCTION_NAME"])
	if c.FunctionName == "" {
		c.FunctionName = "unknown"
	}
	c.Problems = problems
	return c
}
