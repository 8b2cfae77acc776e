package ext

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	ev "lokitelemetry/internal/envvars"
)

// Stream indexes; the dispatcher maps each to a label set.
const (
	StreamFunction  = 0
	StreamPlatform  = 1
	StreamExtension = 2
	numStreams      = 3
)

// StreamTypes is the `type` label of each stream ("" = the function's own output, no type label).
var StreamTypes = [numStreams]string{"", "platform", "extension"}

// Meta is one entry's structured metadata. Converters intern them (one per distinct value), so
// a push body renders each once and the buffer holds a pointer per entry, not a map.
type Meta struct {
	RequestID string
	Level     string
	TenantID  string
	json      string // rendered ,{...} for the push body, built on first use
}

// pairs in the order they are sent (and appended to the line on a Loki without metadata).
func (m *Meta) pairs() [][2]string {
	out := make([][2]string, 0, 3)
	if m.RequestID != "" {
		out = append(out, [2]string{ev.METADATA_REQUEST_ID, m.RequestID})
	}
	if m.Level != "" {
		out = append(out, [2]string{ev.METADATA_LEVEL, m.Level})
	}
	if m.TenantID != "" {
		out = append(out, [2]string{ev.METADATA_TENANT_ID, m.TenantID})
	}
	return out
}

// Entry is one Loki entry. Arrival and Size are the buffer's bookkeeping.
type Entry struct {
	Line    string
	Meta    *Meta
	Ts      int64
	Arrival int64 // monotonic ns when queued
	Size    int32
	Stream  uint8
}

// RuntimeDone is a platform.runtimeDone seen in a delivery: its request id and event time.
type RuntimeDone struct {
	RequestID string
	TimeNs    int64
}

// Converted is what one delivery yielded.
type Converted struct {
	Entries              []Entry
	RuntimeDone          []RuntimeDone
	LambdaDroppedRecords int
}

var levels = map[string]bool{"TRACE": true, "DEBUG": true, "INFO": true, "WARN": true, "WARNING": true,
	"ERROR": true, "FATAL": true, "CRITICAL": true}

func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	var era int64
	if y >= 0 {
		era = y / 400
	} else {
		era = (y - 399) / 400
	}
	yoe := y - era*400
	var mp int64
	if m > 2 {
		mp = m - 3
	} else {
		mp = m + 9
	}
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

func digits(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var v int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}

// isoCache keeps the last "YYYY-MM-DDTHH:MM:SS" seen and its epoch seconds: the lines of one
// delivery share the second. Only the converter's goroutine uses it (under its lock).
type isoCache struct {
	prefix string
	secs   int64
}

// isoToNs parses YYYY-MM-DDTHH:MM:SS[.fff…](Z|±HH:MM) into ns since the epoch.
func (c *isoCache) isoToNs(s string) (int64, bool) {
	if len(s) < 19 {
		return 0, false
	}
	if len(s) == 24 && s[23] == 'Z' && s[19] == '.' && s[:19] == c.prefix {
		if ms, ok := digits(s[20:23]); ok {
			return c.secs*1e9 + ms*1e6, true
		}
	}
	if s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || s[13] != ':' || s[16] != ':' {
		return 0, false
	}
	year, ok1 := digits(s[0:4])
	month, ok2 := digits(s[5:7])
	day, ok3 := digits(s[8:10])
	hour, ok4 := digits(s[11:13])
	minute, ok5 := digits(s[14:16])
	sec, ok6 := digits(s[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) {
		return 0, false
	}
	if !(month >= 1 && month <= 12 && day >= 1 && day <= 31 && hour < 24 && minute < 60 && sec < 61) {
		return 0, false
	}
	i := 19
	var frac int64
	if i < len(s) && (s[i] == '.' || s[i] == ',') {
		j := i + 1
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		d := s[i+1 : j]
		if d == "" {
			return 0, false
		}
		d = (d + "000000000")[:9]
		frac, _ = digits(d)
		i = j
	}
	var offset int64
	rest := s[i:]
	switch {
	case rest == "Z" || rest == "z" || rest == "":
	case (len(rest) == 5 || len(rest) == 6) && (rest[0] == '+' || rest[0] == '-'):
		hh, okh := digits(rest[1:3])
		mm, okm := digits(rest[len(rest)-2:])
		if !okh || !okm || (len(rest) == 6 && rest[3] != ':') {
			return 0, false
		}
		offset = hh*3600 + mm*60
		if rest[0] == '-' {
			offset = -offset
		}
	default:
		return 0, false
	}
	secs := daysFromCivil(year, month, day)*86400 + hour*3600 + minute*60 + sec - offset
	// Loki's timestamps are int64 ns: 1970 to 2262. A time outside that is not a time: one such
	// entry would make Loki refuse its whole push request (a decode error, not one rejected entry).
	if secs < 0 || secs > (math.MaxInt64-frac)/int64(time.Second) {
		return 0, false
	}
	if offset == 0 && (rest == "Z" || rest == "z") && secs < math.MaxInt64/int64(time.Second) {
		// (not the last second Loki can store: the fast path adds milliseconds unchecked)
		c.prefix, c.secs = s[:19], secs
	}
	return secs*1e9 + frac, true
}

// findIn is Python's str.find(sub, start, end) for a single byte, -1 when absent.
func findIn(s string, b byte, start, end int) int {
	if end > len(s) {
		end = len(s)
	}
	if start < 0 || start >= end {
		return -1
	}
	if i := strings.IndexByte(s[start:end], b); i >= 0 {
		return start + i
	}
	return -1
}

// textLevelAndRequest reads the Python runtime's text format "[LEVEL]\t<time>\t<rid>\t…".
func textLevelAndRequest(line string) (string, string) {
	if len(line) == 0 || line[0] != '[' {
		return "", ""
	}
	end := findIn(line, ']', 1, 12)
	if end < 0 {
		return "", ""
	}
	level := line[1:end]
	if !levels[level] {
		level = strings.ToUpper(level)
		if !levels[level] {
			return "", ""
		}
	}
	rid := ""
	if end+1 < len(line) && line[end+1] == '\t' {
		if t2 := findIn(line, '\t', end+2, end+64); t2 > 0 {
			if t3 := findIn(line, '\t', t2+9, t2+66); t3 > 0 {
				if cand := line[t2+1 : t3]; !strings.Contains(cand, " ") {
					rid = cand
				}
			}
		}
	}
	return level, rid
}

// SplitLine cuts a line longer than maxBytes (UTF-8) into parts ending in " [split i/n]",
// never inside a UTF-8 sequence.
func SplitLine(line string, maxBytes int) []string {
	if len(line) <= maxBytes {
		return []string{line}
	}
	room := maxBytes - splitReserve
	if room < 1 {
		room = 1
	}
	var pieces []string
	for start := 0; start < len(line); {
		end := start + room
		if end > len(line) {
			end = len(line)
		}
		for end < len(line) && end > start+1 && line[end]&0xC0 == 0x80 {
			end-- // back off to a character boundary
		}
		pieces = append(pieces, line[start:end])
		start = end
	}
	n := strconv.Itoa(len(pieces))
	out := make([]string, len(pieces))
	for i, p := range pieces {
		out[i] = p + " [split " + strconv.Itoa(i+1) + "/" + n + "]"
	}
	return out
}

// jsonUnquote decodes a JSON string literal (already syntax-checked) without reflection.
func jsonUnquote(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	body := raw[1 : len(raw)-1]
	if bytes.IndexByte(body, '\\') < 0 {
		return string(body), true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

func trimNewline(s string) string {
	if strings.HasSuffix(s, "\n") {
		s = s[:len(s)-1]
	}
	if strings.HasSuffix(s, "\r") {
		s = s[:len(s)-1]
	}
	return s
}

func pyTruthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		return x != ""
	case json.Number:
		f, err := x.Float64()
		return err != nil || f != 0
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	return true
}

func msText(metrics map[string]any, key string) (string, bool) {
	if n, ok := metrics[key].(json.Number); ok {
		if isIntLiteral(string(n)) {
			return pyNumber(n), true
		}
		if f, err := n.Float64(); err == nil {
			return strconv.FormatFloat(f, 'f', 2, 64), true
		}
	}
	return "", false
}

var reportMetrics = [][3]string{
	{"durationMs", "Duration", "ms"},
	{"billedDurationMs", "Billed Duration", "ms"},
	{"memorySizeMB", "Memory Size", "MB"},
	{"maxMemoryUsedMB", "Max Memory Used", "MB"},
	{"initDurationMs", "Init Duration", "ms"},
	{"restoreDurationMs", "Restore Duration", "ms"},
}

// RenderPlatform is a readable line in the spirit of CloudWatch's START/END/REPORT lines.
func RenderPlatform(kind string, raw json.RawMessage) string {
	var r map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil || r == nil {
		r = map[string]any{}
	}
	metrics, _ := r["metrics"].(map[string]any)
	if metrics == nil {
		metrics = map[string]any{}
	}
	rid := pyStr(r["requestId"])
	switch kind {
	case "platform.start":
		v := ""
		if ver, ok := r["version"]; ok {
			v = " Version: " + pyStr(ver)
		}
		return "START RequestId: " + rid + v
	case "platform.runtimeDone":
		parts := []string{"END RequestId: " + rid, "Status: " + pyStr(r["status"])}
		if d, ok := msText(metrics, "durationMs"); ok {
			parts = append(parts, "Duration: "+d+" ms")
		}
		if pb, ok := metrics["producedBytes"]; ok {
			parts = append(parts, "Produced Bytes: "+pyStr(pb))
		}
		if pyTruthy(r["errorType"]) {
			parts = append(parts, "Error Type: "+pyStr(r["errorType"]))
		}
		return strings.Join(parts, "\t")
	case "platform.report":
		parts := []string{"REPORT RequestId: " + rid}
		for _, m := range reportMetrics {
			v, ok := metrics[m[0]]
			if !ok {
				continue
			}
			text := pyStr(v)
			if m[2] == "ms" {
				if t, ok := msText(metrics, m[0]); ok {
					text = t
				} else {
					text = "None"
				}
			}
			parts = append(parts, m[1]+": "+text+" "+m[2])
		}
		parts = append(parts, "Status: "+pyStr(r["status"]))
		if pyTruthy(r["errorType"]) {
			parts = append(parts, "Error Type: "+pyStr(r["errorType"]))
		}
		return strings.Join(parts, "\t")
	case "platform.initStart":
		return "INIT_START Runtime Version: " + pyStr(r["runtimeVersion"]) + "\tPhase: " + pyStr(r["phase"]) +
			"\tType: " + pyStr(r["initializationType"])
	case "platform.initRuntimeDone":
		e := ""
		if pyTruthy(r["errorType"]) {
			e = "\tError Type: " + pyStr(r["errorType"])
		}
		return "INIT_RUNTIME_DONE Status: " + pyStr(r["status"]) + "\tPhase: " + pyStr(r["phase"]) + e
	case "platform.initReport":
		d, ok := msText(metrics, "durationMs")
		if !ok {
			d = "None"
		}
		s := "INIT_REPORT Init Duration: " + d + " ms\tPhase: " + pyStr(r["phase"])
		if st, ok := r["status"]; ok {
			s += "\tStatus: " + pyStr(st)
		}
		return s
	case "platform.logsDropped":
		return "LOGS_DROPPED Dropped Records: " + pyStr(r["droppedRecords"]) + "\tDropped Bytes: " +
			pyStr(r["droppedBytes"]) + "\tReason: " + pyStr(r["reason"])
	}
	return strings.ToUpper(strings.ReplaceAll(kind, "platform.", "")) + " " + compactJSON(raw)
}

// compactJSON is json.dumps(value, ensure_ascii=False, separators=(",", ":")), the Python
// build's rendering of JSON records and unknown platform events.
func compactJSON(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "null"
	}
	if compactIsPython(raw) {
		var b bytes.Buffer
		b.Grow(len(raw))
		if json.Compact(&b, raw) == nil {
			return b.String()
		}
	}
	if s, ok := pyJSON(raw, ",", ":"); ok {
		return s
	}
	return string(raw)
}

// compactIsPython: json.Compact gives exactly Python's rendering when nothing needs re-rendering
// (no \u or \/ escapes, which Python writes as the character, and no fraction or exponent,
// which Python re-prints from the float). That is most JSON log records, and Compact is ~10x
// cheaper than the token-by-token re-rendering.
func compactIsPython(raw []byte) bool {
	inString := false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if inString {
			switch c {
			case '\\':
				if i+1 < len(raw) && (raw[i+1] == 'u' || raw[i+1] == '/') {
					return false
				}
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '.', 'e', 'E':
			if i > 0 && raw[i-1] >= '0' && raw[i-1] <= '9' {
				return false
			}
		}
	}
	return true
}

type metaKey struct{ level, rid, tenant string }

// Converter turns Telemetry API deliveries into entries. Stateful in the request id it saw
// start (to tag print lines; never on Managed Instances, where requests interleave) and in
// the repeat detection; callers serialise calls.
type Converter struct {
	ShipPlatform     bool
	ShipExtension    bool
	MaxLineBytes     int
	ManagedInstances bool
	CurrentRequestID string
	metaCache        map[metaKey]*Meta
	curMs            [numStreams]int64
	used             [numStreams]map[string]int64
	iso              isoCache
}

// NewConverter builds a converter.
func NewConverter(shipPlatform, shipExtension bool, maxLineBytes int, managedInstances bool) *Converter {
	c := &Converter{ShipPlatform: shipPlatform, ShipExtension: shipExtension, MaxLineBytes: maxLineBytes,
		ManagedInstances: managedInstances, metaCache: map[metaKey]*Meta{}}
	for i := range c.used {
		c.used[i] = map[string]int64{}
	}
	return c
}

func (c *Converter) meta(level, rid, tenant string) *Meta {
	if level == "" && rid == "" && tenant == "" {
		return nil
	}
	k := metaKey{level, rid, tenant}
	if m := c.metaCache[k]; m != nil {
		return m
	}
	if len(c.metaCache) > 64 { // old requests' metadata: keep the cache small
		c.metaCache = map[metaKey]*Meta{}
	}
	// Owned copies: the line these came from may be a view of a whole delivery (see delivery.go).
	k = metaKey{strings.Clone(level), strings.Clone(rid), strings.Clone(tenant)}
	m := &Meta{RequestID: k.rid, Level: k.level, TenantID: k.tenant}
	c.metaCache[k] = m
	return m
}

// ts gives a line repeated within one millisecond of a stream the next free nanosecond (Loki
// keeps one entry per identical timestamp and line); every other entry keeps its own time.
func (c *Converter) ts(stream int, ts int64, line string) int64 {
	ms := ts / 1e6
	if ms > c.curMs[stream] {
		c.curMs[stream] = ms
		clear(c.used[stream])
		c.used[stream][line] = ts
		return ts
	}
	if ms < c.curMs[stream] {
		return ts // an older straggler: rare, left alone
	}
	if prev, ok := c.used[stream][line]; ok && prev >= ts {
		ts = prev + 1
	}
	c.used[stream][line] = ts
	return ts
}

// foldRoom is what folding the metadata into the line can add (" request_id=… level=…"): a
// line is split so that it fits Loki's max_line_size with it, since a Loki 2.x found later
// gets the metadata in the line.
func foldRoom(m *Meta) int {
	if m == nil {
		return 0
	}
	n := 0
	for _, kv := range m.pairs() {
		n += 2 + len(kv[0]) + len(kv[1])
	}
	return n
}

func (c *Converter) add(out *Converted, stream int, ts int64, line string, m *Meta) {
	limit := max(c.MaxLineBytes-foldRoom(m), splitReserve+1)
	if len(line) <= limit {
		out.Entries = append(out.Entries, Entry{Stream: uint8(stream), Ts: c.ts(stream, ts, line), Line: line, Meta: m})
		return
	}
	// Parts get t, t+1ns, ... so they sort in order in Loki.
	for i, part := range SplitLine(line, limit) {
		out.Entries = append(out.Entries, Entry{Stream: uint8(stream), Ts: c.ts(stream, ts+int64(i), part), Line: part, Meta: m})
	}
}

type rawItem struct {
	Time   json.RawMessage `json:"time"`
	Type   json.RawMessage `json:"type"`
	Record json.RawMessage `json:"record"`
}

// toItem is the encoding/json path's item (deliveries the hand parser refused).
func (r *rawItem) toItem() item {
	var it item
	it.time, it.hasTime = jsonUnquote(r.Time)
	it.kind, _ = jsonUnquote(r.Type)
	rec := r.Record
	switch {
	case len(rec) == 0 || string(rec) == "null":
		it.recKind = 'n'
	case rec[0] == '"':
		s, ok := jsonUnquote(rec)
		if !ok {
			it.recKind = 'n'
		} else {
			it.recKind, it.recStr = '"', s
		}
	case rec[0] == '{':
		it.recKind, it.recRaw = '{', rec
	default:
		it.recKind, it.recRaw = 'v', rec
	}
	return it
}

type recordFields struct {
	Message   any `json:"message"`
	Level     any `json:"level"`
	RequestID any `json:"requestId"`
	TenantID  any `json:"tenantId"`
}

// Convert never fails: a malformed delivery or record is skipped.
func (c *Converter) Convert(body []byte) (out Converted) {
	defer func() { _ = recover() }()
	items, ok := parseDelivery(body)
	if !ok {
		// One pass straight into the items. An item that is not an object is a type error that
		// json reports after decoding the others; it is left zero and skipped.
		var raws []rawItem
		if err := json.Unmarshal(body, &raws); err != nil {
			var te *json.UnmarshalTypeError
			if !errors.As(err, &te) {
				return out
			}
		}
		items = make([]item, len(raws))
		for i := range raws {
			items[i] = raws[i].toItem()
		}
	}
	out.Entries = make([]Entry, 0, len(items))
	for i := range items {
		c.one(&items[i], &out)
	}
	return out
}

func (c *Converter) one(it *item, out *Converted) {
	defer func() { _ = recover() }()
	kind := it.kind
	var ts int64
	if v, ok := c.iso.isoToNs(it.time); ok && it.hasTime {
		ts = v
	} else {
		ts = time.Now().UnixNano()
	}
	rec := it.recRaw
	switch kind {
	case "function", "extension":
		stream := StreamFunction
		if kind == "extension" {
			stream = StreamExtension
			if !c.ShipExtension {
				return
			}
		}
		if it.recKind == 'n' {
			return
		}
		var line, level, rid, tenant string
		switch it.recKind {
		case '"':
			line = trimNewline(it.recStr)
			if stream == StreamExtension && strings.HasPrefix(strings.TrimLeft(line, " \t\r\n\v\f"), Marker) {
				return // our own diagnostics: never ship them back (feedback loop)
			}
			level, rid = textLevelAndRequest(line)
		case '{':
			var f recordFields
			_ = json.Unmarshal(rec, &f)
			if msg, ok := f.Message.(string); ok && stream == StreamExtension &&
				strings.HasPrefix(strings.TrimLeft(msg, " \t\r\n\v\f"), Marker) {
				return
			}
			line = compactJSON(rec)
			if l, ok := f.Level.(string); ok && l != "" {
				level = strings.ToUpper(l)
			}
			if r, ok := f.RequestID.(string); ok {
				rid = r
			}
			if t, ok := f.TenantID.(string); ok {
				tenant = t
			}
		default: // a number, list or bool: json.dumps with its default separators, as Python does
			if s, ok := pyJSON(rec, ", ", ": "); ok {
				line = s
			} else {
				line = string(rec)
			}
		}
		if rid == "" && stream == StreamFunction && !c.ManagedInstances {
			rid = c.CurrentRequestID
		}
		c.add(out, stream, ts, line, c.meta(level, rid, tenant))
		return
	}
	if !strings.HasPrefix(kind, "platform.") {
		return
	}
	if it.recKind == '"' {
		rec = appendJSONString(nil, it.recStr)
	}
	var f struct {
		RequestID      any `json:"requestId"`
		TenantID       any `json:"tenantId"`
		DroppedRecords any `json:"droppedRecords"`
	}
	if len(rec) > 0 && rec[0] == '{' {
		d := json.NewDecoder(bytes.NewReader(rec))
		d.UseNumber()
		_ = d.Decode(&f)
	}
	prid, _ := f.RequestID.(string)
	tenant, _ := f.TenantID.(string)
	switch kind {
	case "platform.start":
		if prid != "" && !c.ManagedInstances {
			c.CurrentRequestID = prid
		}
	case "platform.runtimeDone":
		if prid != "" {
			out.RuntimeDone = append(out.RuntimeDone, RuntimeDone{RequestID: prid, TimeNs: ts})
		}
	case "platform.logsDropped":
		if n, ok := f.DroppedRecords.(json.Number); ok && isIntLiteral(string(n)) {
			if v, err := n.Int64(); err == nil && v > 0 {
				out.LambdaDroppedRecords += int(v)
			}
		}
	}
	if c.ShipPlatform {
		c.add(out, StreamPlatform, ts, RenderPlatform(kind, rec), c.meta("", prid, tenant))
	}
}
