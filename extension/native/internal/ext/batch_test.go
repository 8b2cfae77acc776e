package ext

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

func entry(line string, m *Meta) Entry {
	return Entry{Stream: StreamFunction, Ts: 1, Line: line, Meta: m}
}

func TestBufferDropsOldestAndCountsHeldBytes(t *testing.T) {
	b := NewBuffer(3 * (EntryOverhead + 10))
	es := []Entry{entry("0123456789", nil), entry("1123456789", nil), entry("2123456789", nil)}
	if d := b.Add(es, 1); d != 0 {
		t.Fatalf("dropped %d", d)
	}
	taken := b.Take(EntryOverhead + 10) // one in flight still counts
	if len(taken) != 1 || taken[0].Line != "0123456789" || b.HeldBytes() != 3*(EntryOverhead+10) {
		t.Fatalf("take %v held %d", taken, b.HeldBytes())
	}
	if d := b.Add([]Entry{entry("3123456789", nil)}, 2); d != 1 || b.Len() != 2 {
		t.Fatalf("dropped %d len %d", d, b.Len())
	}
	b.PutBack(taken)
	got := b.Take(1 << 30)
	var ls []string
	for _, e := range got {
		ls = append(ls, e.Line)
	}
	if strings.Join(ls, ",") != "0123456789,2123456789,3123456789" {
		t.Fatalf("order after put back: %v", ls)
	}
	b.Settle(got)
	if b.HeldBytes() != 0 || b.Len() != 0 {
		t.Fatalf("held %d len %d", b.HeldBytes(), b.Len())
	}
}

func TestBufferAcrossManyBlocks(t *testing.T) {
	b := NewBuffer(1 << 30)
	var es []Entry
	for i := 0; i < 3*queueBlock+7; i++ {
		es = append(es, entry(strings.Repeat("x", i%5), nil))
	}
	b.Add(es, 1)
	n := 0
	for b.Len() > 0 {
		n += len(b.Take(1000))
	}
	if n != len(es) || b.QueuedBytes != 0 {
		t.Fatalf("took %d of %d, queued %d", n, len(es), b.QueuedBytes)
	}
}

func decodeBody(t *testing.T, gz []byte) map[string]any {
	t.Helper()
	r, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(r)
	var v map[string]any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	return v
}

func TestEncodeRequestsMetadataFallbackAndLimit(t *testing.T) {
	labels := StreamLabels("fn", [][2]string{{"env", "prod"}})
	if labels[StreamPlatform] != `{"env":"prod","source":"lambda","function":"fn","type":"platform"}` {
		t.Fatalf("labels %s", labels[StreamPlatform])
	}
	m := &Meta{RequestID: "r1", Level: "INFO"}
	es := []Entry{entry("a \"q\"\n\x01é", m), entry("already r1 here", m)}
	reqs := EncodeRequests(es, &labels, true, MaxRequestBytes)
	v := decodeBody(t, reqs[0].Body)
	vals := v["streams"].([]any)[0].(map[string]any)["values"].([]any)
	first := vals[0].([]any)
	if first[1] != "a \"q\"\n\x01é" || first[2].(map[string]any)["request_id"] != "r1" {
		t.Fatalf("values %v", vals)
	}
	reqs = EncodeRequests(es, &labels, false, MaxRequestBytes)
	vals = decodeBody(t, reqs[0].Body)["streams"].([]any)[0].(map[string]any)["values"].([]any)
	if vals[0].([]any)[1] != "a \"q\"\n\x01é request_id=r1 level=INFO" || vals[1].([]any)[1] != "already r1 here level=INFO" || len(vals[0].([]any)) != 2 {
		t.Fatalf("folded %v", vals)
	}
	var many []Entry
	for i := 0; i < 100; i++ {
		many = append(many, entry(strings.Repeat("z", 1000), nil))
	}
	reqs = EncodeRequests(many, &labels, true, 20_000)
	total := 0
	for _, r := range reqs {
		if len(EncodeJSON(r.Entries, &labels, true)) > 20_000 {
			t.Fatalf("a body over the limit")
		}
		total += len(r.Entries)
	}
	if total != 100 || len(reqs) < 5 {
		t.Fatalf("%d entries in %d requests", total, len(reqs))
	}
}
