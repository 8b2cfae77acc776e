package ext

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
	"unsafe"

	ev "lokitelemetry/internal/envvars"
	"lokitelemetry/internal/fastgzip"
)

const (
	// MaxRequestBytes is the largest uncompressed JSON body per push (Promtail/Alloy's batch size).
	MaxRequestBytes = 1024 * 1024
	// EntryOverhead is what an entry costs beyond its line bytes: the 48-byte Entry in its queue
	// block plus the allocator's rounding of the line; the same figure as the Python build's.
	EntryOverhead = 64
	// MetadataOverhead is charged per entry carrying metadata, as the Python build does, so both
	// builds drop the same entries when full (the Meta itself is shared, the cost is an upper bound).
	MetadataOverhead = 64
	// splitReserve is the room kept in each split part for the " [split i/n]" marker.
	splitReserve = 32
	// queueBlock entries of 48 bytes make a 48 KiB block: a span of its own, freed whole.
	queueBlock = 1024
)

func entrySize(e *Entry) int32 {
	s := int32(len(e.Line)) + EntryOverhead
	if e.Meta != nil {
		s += MetadataOverhead
	}
	return s
}

// appendJSONString writes s as a JSON string the way Python's json (ensure_ascii=False) does:
// only quote, backslash and control characters are escaped; invalid UTF-8 becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				b = append(b, s[start:i]...)
				b = append(b, `\ufffd`...)
				i++
				start = i
				continue
			}
			i += n
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"':
			b = append(b, '\\', '"')
		case '\\':
			b = append(b, '\\', '\\')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// FoldMetadata appends to the line what it does not already say (a Loki without metadata).
func FoldMetadata(line string, m *Meta) string {
	if m == nil {
		return line
	}
	var extra []string
	for _, kv := range m.pairs() {
		if !strings.Contains(line, kv[1]) {
			extra = append(extra, kv[0]+"="+kv[1])
		}
	}
	if len(extra) == 0 {
		return line
	}
	return line + " " + strings.Join(extra, " ")
}

func (m *Meta) rendered() string {
	if m.json == "" {
		b := []byte(",{")
		for i, kv := range m.pairs() {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, kv[0])
			b = append(b, ':')
			b = appendJSONString(b, kv[1])
		}
		m.json = string(append(b, '}'))
	}
	return m.json
}

// StreamLabels renders the label set of each stream as JSON: the static labels, then source,
// function and (not for the function's own output) type.
func StreamLabels(functionName string, static [][2]string) [numStreams]string {
	var out [numStreams]string
	for i, t := range StreamTypes {
		b := []byte{'{'}
		sep := func() {
			if len(b) > 1 {
				b = append(b, ',')
			}
		}
		for _, kv := range static {
			sep()
			b = appendJSONString(b, kv[0])
			b = append(b, ':')
			b = appendJSONString(b, kv[1])
		}
		sep()
		b = append(b, `"source":`...)
		b = appendJSONString(b, ev.SOURCE_LABEL_VALUE)
		b = append(b, `,"function":`...)
		b = appendJSONString(b, functionName)
		if t != "" {
			b = append(b, `,"type":`...)
			b = appendJSONString(b, t)
		}
		out[i] = string(append(b, '}'))
	}
	return out
}

// EncodeJSON is the push body {"streams":[{"stream":{...},"values":[[ts,line,{meta}],...]}]}.
func EncodeJSON(entries []Entry, labels *[numStreams]string, metadata bool) []byte {
	return appendJSONBody(nil, entries, labels, metadata)
}

// jsonSizeEstimate is the body's size unless lines need escaping: an exact-enough capacity
// saves the doublings of a 1 MiB buffer (an estimate without the metadata was short by ~55
// bytes an entry: growslice was 22% of the CPU with 40-byte lines).
func jsonSizeEstimate(entries []Entry, labels *[numStreams]string, metadata bool) int {
	size := 16
	for _, l := range labels {
		size += len(l) + 16
	}
	for i := range entries {
		e := &entries[i]
		size += len(e.Line) + 27 // ["<19 digits>","..."],
		if e.Meta != nil {
			if metadata {
				size += len(e.Meta.rendered())
			} else {
				size += foldRoom(e.Meta)
			}
		}
	}
	return size
}

// appendJSONBody appends the push body to dst. Streams are written in index order; each takes
// one pass over the entries (three at most: no per-stream index slices to allocate).
func appendJSONBody(dst []byte, entries []Entry, labels *[numStreams]string, metadata bool) []byte {
	var present [numStreams]bool
	for i := range entries {
		present[entries[i].Stream] = true
	}
	b := slices.Grow(dst, jsonSizeEstimate(entries, labels, metadata))
	b = append(b, `{"streams":[`...)
	first := true
	for s := 0; s < numStreams; s++ {
		if !present[s] {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, `{"stream":`...)
		b = append(b, labels[s]...)
		b = append(b, `,"values":[`...)
		firstValue := true
		for idx := range entries {
			e := &entries[idx]
			if int(e.Stream) != s {
				continue
			}
			if !firstValue {
				b = append(b, ',')
			}
			firstValue = false
			b = appendValue(b, e, metadata)
		}
		b = append(b, "]}"...)
	}
	return append(b, "]}"...)
}

// appendValue is one ["ts","line",{meta}] (or the metadata folded into the line).
func appendValue(b []byte, e *Entry, metadata bool) []byte {
	b = append(b, `["`...)
	b = strconv.AppendInt(b, e.Ts, 10)
	b = append(b, `",`...)
	switch {
	case e.Meta != nil && metadata:
		b = appendJSONString(b, e.Line)
		b = append(b, e.Meta.rendered()...)
	case e.Meta != nil:
		b = appendJSONString(b, FoldMetadata(e.Line, e.Meta))
	default:
		b = appendJSONString(b, e.Line)
	}
	return append(b, ']')
}

// encoder is the scratch space of one push at a time: the gzip encoder (~0.2 MiB of tables and
// scratch, kept: a sync.Pool would drop it at every collection), the JSON body and the
// compressed bytes before they are copied out at their exact size.
var encoder struct {
	sync.Mutex
	gz  fastgzip.Encoder
	raw []byte
	out []byte
}

// maxKeptScratch: scratch buffers larger than this (a lone entry of many MiB) are not kept.
const maxKeptScratch = 2 * MaxRequestBytes

// GzipBytes compresses a push body (gzip container, level 1).
func GzipBytes(data []byte) []byte {
	encoder.Lock()
	defer encoder.Unlock()
	return gzipLocked(data)
}

// gzipLocked: internal/fastgzip, about as small as gzip level 1 and 2.5x faster than
// compress/gzip at BestSpeed (the CPU is billed to the function).
func gzipLocked(data []byte) []byte {
	encoder.out = encoder.gz.Encode(encoder.out[:0], data)
	body := bytes.Clone(encoder.out)
	if cap(encoder.out) > maxKeptScratch {
		encoder.out = nil
	}
	return body
}

// encodeBody is the gzip'd push body and the size of its JSON.
func encodeBody(entries []Entry, labels *[numStreams]string, metadata bool) ([]byte, int) {
	encoder.Lock()
	defer encoder.Unlock()
	raw := appendJSONBody(encoder.raw[:0], entries, labels, metadata)
	if cap(raw) <= maxKeptScratch {
		encoder.raw = raw
	} else {
		encoder.raw = nil
	}
	return gzipLocked(raw), len(raw)
}

// Request is one push body with the entries it carries.
type Request struct {
	Entries []Entry
	Body    []byte // gzip'd
}

// EncodeRequests gives gzip'd bodies of at most maxBytes uncompressed each. Batches are taken by
// estimated size; escaping can push the real size over, so an oversized body is halved until it
// fits (a lone entry is sent whatever its size).
func EncodeRequests(entries []Entry, labels *[numStreams]string, metadata bool, maxBytes int) []Request {
	body, size := encodeBody(entries, labels, metadata)
	if size <= maxBytes || len(entries) <= 1 {
		return []Request{{Entries: entries, Body: body}}
	}
	mid := len(entries) / 2
	return append(EncodeRequests(entries[:mid], labels, metadata, maxBytes),
		EncodeRequests(entries[mid:], labels, metadata, maxBytes)...)
}

// Buffer is a FIFO of entries bounded by their counted bytes; when full the oldest go (and are
// counted). Held bytes include entries taken for a push and not yet settled.
//
// Memory is kept compact so that what is counted is what it costs (the RSS budget is the
// buffer size x 1.1 + 8 MiB): entries live in fixed blocks of 1024 (48 KiB, no spare half of a
// doubled slice), and lines up to 16 KiB are copied into 64 KiB slabs in arrival order, so an
// entry costs its 48-byte Entry plus its bytes, and as the oldest entries go whole slabs are
// freed rather than a scatter of small strings of every size class (measured with Loki down and
// a 16 MiB buffer cycling 20/100/1000-byte lines: RSS 34 MiB with plain strings).
type Buffer struct {
	MaxBytes      int
	blocks        [][]Entry // blocks[0] is resliced as entries leave its front
	n             int
	slab          []byte
	QueuedBytes   int
	InflightBytes int
	Dropped       int
	Accepted      int // everything ever accepted (before evictions): per-invoke volumes are its differences
}

const (
	slabSize    = 64 << 10
	maxSlabLine = slabSize / 4
)

// NewBuffer makes an empty buffer.
func NewBuffer(maxBytes int) *Buffer { return &Buffer{MaxBytes: maxBytes} }

// Len is the number of queued entries.
func (b *Buffer) Len() int { return b.n }

// HeldBytes is queued plus in-flight bytes.
func (b *Buffer) HeldBytes() int { return b.QueuedBytes + b.InflightBytes }

// compact copies a line into the current slab (the slab's bytes are never written again, so the
// string stays immutable; the collector keeps the slab while any of its lines is referenced).
func (b *Buffer) compact(s string) string {
	n := len(s)
	if n == 0 {
		return s
	}
	if n > maxSlabLine {
		return strings.Clone(s) // its own allocation: never a view that keeps a delivery alive
	}
	if len(b.slab)+n > cap(b.slab) {
		b.slab = make([]byte, 0, slabSize)
	}
	off := len(b.slab)
	b.slab = append(b.slab, s...)
	return unsafe.String(&b.slab[off], n)
}

func (b *Buffer) pushBack(e Entry) {
	last := len(b.blocks) - 1
	if last < 0 || len(b.blocks[last]) == cap(b.blocks[last]) {
		b.blocks = append(b.blocks, make([]Entry, 0, queueBlock))
		last++
	}
	b.blocks[last] = append(b.blocks[last], e)
	b.n++
}

func (b *Buffer) front() *Entry { return &b.blocks[0][0] }

func (b *Buffer) popFront() Entry {
	first := b.blocks[0]
	e := first[0]
	first[0] = Entry{} // release the line for the collector
	b.n--
	if len(first) == 1 && (len(b.blocks) > 1 || cap(first) == 1) {
		b.blocks[0] = nil
		b.blocks = b.blocks[1:]
	} else {
		b.blocks[0] = first[1:]
	}
	if b.n == 0 {
		b.blocks = nil
	}
	return e
}

// Add appends; it returns how many of the oldest queued entries were dropped to make room.
func (b *Buffer) Add(entries []Entry, now int64) int {
	for i := range entries {
		e := entries[i]
		e.Line = b.compact(e.Line)
		e.Arrival = now
		e.Size = entrySize(&e)
		b.QueuedBytes += int(e.Size)
		b.Accepted += int(e.Size)
		b.pushBack(e)
	}
	dropped := 0
	for b.n > 0 && b.QueuedBytes+b.InflightBytes > b.MaxBytes {
		b.QueuedBytes -= int(b.popFront().Size)
		dropped++
	}
	b.Dropped += dropped
	return dropped
}

// OldestArrival is the arrival time of the first queued entry (ok false when empty).
func (b *Buffer) OldestArrival() (int64, bool) {
	if b.n == 0 {
		return 0, false
	}
	return b.front().Arrival, true
}

// Take removes entries from the front up to maxBytes (at least one); they are in flight.
func (b *Buffer) Take(maxBytes int) []Entry {
	out := make([]Entry, 0, b.countUpTo(maxBytes))
	size := 0
	for b.n > 0 {
		s := int(b.front().Size)
		if len(out) > 0 && size+s > maxBytes {
			break
		}
		out = append(out, b.popFront())
		size += s
	}
	b.QueuedBytes -= size
	b.InflightBytes += size
	return out
}

// countUpTo is how many entries Take(maxBytes) removes: its slice is allocated once (appending
// from nil copied ~10,000 entries of 48 bytes through every doubling of a 1 MiB request).
func (b *Buffer) countUpTo(maxBytes int) int {
	n, size := 0, 0
	for _, block := range b.blocks {
		for i := range block {
			s := int(block[i].Size)
			if n > 0 && size+s > maxBytes {
				return n
			}
			n++
			size += s
		}
	}
	return n
}

func sizeOf(entries []Entry) int {
	n := 0
	for i := range entries {
		n += int(entries[i].Size)
	}
	return n
}

// Settle ends the push of taken entries (delivered or given up on).
func (b *Buffer) Settle(taken []Entry) { b.InflightBytes -= sizeOf(taken) }

// PutBack returns entries whose push ran out of time to the front, oldest first. The taken
// slice becomes the first block (no copy of the queue behind it).
func (b *Buffer) PutBack(taken []Entry) {
	if len(taken) == 0 {
		return
	}
	size := sizeOf(taken)
	b.InflightBytes -= size
	b.QueuedBytes += size
	block := taken[:len(taken):len(taken)] // full: pushBack never appends into it
	b.blocks = append([][]Entry{block}, b.blocks...)
	b.n += len(taken)
}
