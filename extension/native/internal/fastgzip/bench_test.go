package fastgzip_test

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"fmt"
	"io"
	"math/rand"
	"strconv"
	"strings"
	"testing"

	"lokitelemetry/internal/ext"
	"lokitelemetry/internal/fastgzip"
)

// filler is log-like text as bench/workload.py's filler(): words, and 30% 48-bit hex ids
// (Python's random is not reproduced, the mix is).
func filler(maxSize int) string {
	rng := rand.New(rand.NewSource(5))
	words := []string{"GET", "PUT", "key=", "status=200", "bucket", "user", "ms", "items", "ok", "table", "DynamoDB"}
	var b strings.Builder
	for b.Len() < maxSize {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		if rng.Float64() < 0.7 {
			b.WriteString(words[rng.Intn(len(words))])
		} else {
			fmt.Fprintf(&b, "%012x", rng.Int63()&(1<<48-1))
		}
	}
	return b.String()[:maxSize]
}

var benchFiller = filler(300_000)

// pushBodies are the JSON push bodies internal/ext builds from a delivery of n records of
// size-byte lines written like bench/workload.py's handler (a different filler slice per line,
// a request id on every entry), at most 1 MiB each.
func pushBodies(t testing.TB, n, size int) [][]byte {
	var d strings.Builder
	d.WriteString("[")
	span := len(benchFiller) - size - 1
	for i := 0; i < n; i++ {
		if i > 0 {
			d.WriteString(",")
		}
		head := "BENCH t " + strconv.Itoa(i) + " " + strconv.Itoa(1700000000000000000+i*1234567) + " "
		off := (i * 7919) % span
		line := head + benchFiller[off:off+max(0, size-len(head))]
		d.WriteString(`{"time":"2024-05-06T07:08:09.123Z","type":"function","record":` + strconv.Quote(line+"\n") + `}`)
	}
	d.WriteString("]")
	c := ext.NewConverter(false, false, 256000, false)
	c.CurrentRequestID = "8f5e4c1a-0000-4000-8000-000000000001"
	labels := ext.StreamLabels("fn", nil)
	var bodies [][]byte
	for _, req := range ext.EncodeRequests(c.Convert([]byte(d.String())).Entries, &labels, true, ext.MaxRequestBytes) {
		r, err := gzip.NewReader(bytes.NewReader(req.Body))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, raw)
	}
	return bodies
}

var lineSizes = []int{40, 200, 8192}

// benchLines makes a delivery of about 1 MiB (several bodies for 8 KiB lines).
func benchLines(size int) int { return max(1000, (1<<20)/(size+100)) }

// TestPushBodies: the extension's own bodies round-trip.
func TestPushBodies(t *testing.T) {
	var e fastgzip.Encoder
	for _, size := range lineSizes {
		for _, body := range pushBodies(t, benchLines(size), size) {
			z := e.Encode(nil, body)
			r, err := gzip.NewReader(bytes.NewReader(z))
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("%d-byte lines: round trip failed (%v)", size, err)
			}
		}
	}
}

// BenchmarkEncode compares this encoder with compress/gzip at BestSpeed (what the extension
// used) on push bodies of 1,000 lines; size/op is the compressed bytes per body set.
func BenchmarkEncode(b *testing.B) {
	for _, size := range lineSizes {
		bodies := pushBodies(b, benchLines(size), size)
		total := 0
		for _, body := range bodies {
			total += len(body)
		}
		b.Run(strconv.Itoa(size)+"/fastgzip", func(b *testing.B) {
			var e fastgzip.Encoder
			var out []byte
			b.SetBytes(int64(total))
			zsize := 0
			for i := 0; i < b.N; i++ {
				zsize = 0
				for _, body := range bodies {
					out = e.Encode(out[:0], body)
					zsize += len(out)
				}
			}
			b.ReportMetric(float64(zsize), "zbytes")
			b.ReportMetric(float64(total)/float64(zsize), "ratio")
		})
		b.Run(strconv.Itoa(size)+"/flate1", func(b *testing.B) {
			var out bytes.Buffer
			w, _ := gzip.NewWriterLevel(&out, flate.BestSpeed)
			b.SetBytes(int64(total))
			zsize := 0
			for i := 0; i < b.N; i++ {
				zsize = 0
				for _, body := range bodies {
					out.Reset()
					w.Reset(&out)
					w.Write(body)
					w.Close()
					zsize += out.Len()
				}
			}
			b.ReportMetric(float64(zsize), "zbytes")
			b.ReportMetric(float64(total)/float64(zsize), "ratio")
		})
	}
}
