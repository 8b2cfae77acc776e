package ext

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// Benchmarks only (go test -bench .): the per-line cost of conversion and encoding.
func deliveryOf(n int, record func(i int) string) []byte {
	var b strings.Builder
	b.WriteString("[")
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`{"time":"2024-05-06T07:08:09.123Z","type":"function","record":` + record(i) + `}`)
	}
	b.WriteString("]")
	return []byte(b.String())
}

func BenchmarkConvertTextLines(b *testing.B) {
	body := deliveryOf(1000, func(i int) string { return `"line ` + strconv.Itoa(i) + ` of some typical application log output\n"` })
	c := NewConverter(false, false, 256000, false)
	b.SetBytes(int64(len(body)))
	for i := 0; i < b.N; i++ {
		c.Convert(body)
	}
}

func BenchmarkConvertJSONLines(b *testing.B) {
	body := deliveryOf(1000, func(i int) string {
		return `{"timestamp":"2024-05-06T07:08:09.123Z","level":"INFO","requestId":"8f5e4c1a-0000-4000-8000-000000000001","message":"line ` + strconv.Itoa(i) + `"}`
	})
	c := NewConverter(false, false, 256000, false)
	b.SetBytes(int64(len(body)))
	for i := 0; i < b.N; i++ {
		c.Convert(body)
	}
}

func BenchmarkEncodeRequests(b *testing.B) {
	c := NewConverter(false, false, 256000, false)
	out := c.Convert(deliveryOf(1000, func(i int) string { return `"line ` + strconv.Itoa(i) + ` of some typical application log output\n"` }))
	labels := StreamLabels("fn", nil)
	_ = time.Now
	for i := 0; i < b.N; i++ {
		EncodeRequests(out.Entries, &labels, true, MaxRequestBytes)
	}
}
