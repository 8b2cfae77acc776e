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

// BenchmarkPipeline is the path of a line through the extension (without HTTP): a delivery of
// 1,000 records converted and queued, then taken and encoded in 1 MiB requests, like the
// bench's lines (a request id from platform.start on every entry).
func BenchmarkPipeline(b *testing.B) {
	for _, size := range []int{40, 200, 8192} {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			filler := strings.Repeat("GET key=7f3a status=200 bucket user 12 ms items ok table ", size/50+2)
			body := deliveryOf(1000, func(i int) string {
				line := "BENCH t " + strconv.Itoa(i) + " 1700000000000000000 " + filler[i%50:]
				return strconv.Quote(line[:size] + "\n")
			})
			c := NewConverter(false, false, 256000, false)
			c.CurrentRequestID = "8f5e4c1a-0000-4000-8000-000000000001"
			labels := StreamLabels("fn", nil)
			buf := NewBuffer(256 << 20)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				buf.Add(c.Convert(body).Entries, 0)
				for buf.Len() > 0 {
					taken := buf.Take(MaxRequestBytes)
					EncodeRequests(taken, &labels, true, MaxRequestBytes)
					buf.Settle(taken)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/line")
		})
	}
}
