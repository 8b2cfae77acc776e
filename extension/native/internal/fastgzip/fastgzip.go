// Package fastgzip is a fast single-pass gzip (RFC 1952) / DEFLATE (RFC 1951) encoder for push
// bodies: bytes in, one gzip member out. Standard library only, no unsafe.
//
// Why: gzip was 65-90% of the native build's CPU per shipped line, and compress/flate at
// BestSpeed is slower than the C zlib level 1 the Python build uses. BenchmarkEncode, on the
// push bodies internal/ext builds from bench/workload.py-like lines (one run, same machine,
// 2 shared cores, medians of 4):
//
//	line size  body bytes   fastgzip            compress/flate BestSpeed   speed   size
//	40 B         906 KB     1022 MB/s  107163 B   389 MB/s  106097 B       2.63x   1.010x
//	200 B        982 KB      401 MB/s  303099 B   149 MB/s  298860 B       2.69x   1.014x
//	8 KiB       8.27 MB      310 MB/s 3460740 B   110 MB/s 3435321 B       2.82x   1.007x
//
// Design. LZ77 with one candidate per hash (a 16K-entry table of positions, like Snappy and
// klauspost/compress level 1): the hash covers 6 bytes, a match needs 4 equal bytes and is
// 4..258 long within the 32 KiB window. Only every 4th position is probed (the step grows
// further over long literal runs); a match found is extended backwards up to 8 bytes at once,
// which recovers the starts the probes skip, and forwards 8 bytes at a time. Probing every
// position (hash of 5 bytes) took 1.4-1.5x the time for 5-9% smaller output. The whole input is
// the window, nothing is copied, and the table keeps positions offset by a cursor that moves on
// by more than the window at each call, so it is not cleared between calls. The input is cut
// into blocks of 65535 bytes; a block's matches are kept as (literal run, length, distance)
// sequences while the histogram is counted, then the block is written as dynamic Huffman (codes from that histogram, length-limited: 14 bits for
// literal/length so that four literal codes always fit between flushes), fixed Huffman or
// stored, whichever is smallest. Fixed Huffman alone would be 1.43-1.50x bigger on these
// bodies; building the per-block codes is ~4% of the time, so they stay. The bit writer
// keeps 64 bits and stores 8 bytes at a time, advancing by the whole bytes. Every code is
// complete (at least two symbols per tree), which every inflater accepts. The trailer's CRC-32
// is hash/crc32 (assembly).
package fastgzip

import (
	"encoding/binary"
	"hash/crc32"
	"math/bits"
	"slices"
)

const (
	tableBits = 14
	hashBytes = 6
	tableSize = 1 << tableBits
	maxMatch  = 258
	maxDist   = 32768
	blockSize = 1<<16 - 1 // one stored block when incompressible
	// cursorGap separates the positions of one call from those of the next in the hash table:
	// a stale entry is always more than maxDist behind, so the table is never cleared.
	cursorGap = 1 << 16
	// defaultMaxCursor bounds the int32 table entries; past it the table is rebased.
	defaultMaxCursor = 1 << 30
	// The search probes every probeStep-th position, plus one more byte of step for every
	// 1<<skipLog bytes of the current literal run (incompressible stretches go fast).
	skipLog   = 4
	probeStep = 4
)

// Encoder compresses into gzip. Its zero value is ready; it keeps its tables and scratch between
// calls. Not safe for concurrent use.
type Encoder struct {
	table [tableSize]int32 // position + cur of the last 6 bytes probed with this hash
	cur   int              // added to positions in table
	seqs  []seq

	litFreq  [286]uint32
	distFreq [30]uint32

	litLen   [288]uint8
	litCode  [288]uint16
	distLen  [30]uint8
	distCode [30]uint16
	lenTab   [256]uint32 // per block: length-3 -> Huffman code | extra << code length, bit count << 24
	distTab  [30]uint32  // per block: distance code -> Huffman code, bit count << 24

	clLen  [19]uint8
	clCode [19]uint16
	rle    []uint16 // code-length symbols, extra value << 5
	sorted []uint64

	maxCursor int // 0: defaultMaxCursor (tests lower it)

	// bit writer
	out   []byte
	n     int
	bits  uint64
	nbits uint
}

// seq is a literal run followed by a match (mlen 0: no match, the block's tail).
type seq struct {
	lits uint16 // a block is at most 65535 bytes
	mlen uint16
	dist uint16 // distance - 1
	dc   uint8  // distance code
}

var gzipHeader = [10]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 0xff}

// Encode appends the gzip of src to dst and returns it.
func (e *Encoder) Encode(dst, src []byte) []byte {
	dst = append(dst, gzipHeader[:]...)
	e.out = dst
	e.n = len(dst)
	e.bits, e.nbits = 0, 0
	e.deflate(src)
	dst = e.out[:e.n]
	e.out = nil
	dst = binary.LittleEndian.AppendUint32(dst, crc32.ChecksumIEEE(src))
	return binary.LittleEndian.AppendUint32(dst, uint32(len(src)))
}

func (e *Encoder) maxCur() int {
	if e.maxCursor > 0 {
		return e.maxCursor
	}
	return defaultMaxCursor
}

func (e *Encoder) deflate(src []byte) {
	if e.cur == 0 || e.cur > e.maxCur() {
		clear(e.table[:])
		e.cur = cursorGap
	}
	if len(src) == 0 {
		e.reserve(16)
		e.writeBits(1|1<<1, 3) // final, fixed
		e.writeBits(0, 7)      // end of block
		e.flushFinal()
		return
	}
	for start := 0; start < len(src); {
		end := min(start+blockSize, len(src))
		if e.cur+end > e.maxCur() {
			e.rebase(start)
		}
		e.lz(src, start, end)
		e.writeBlock(src[start:end], end == len(src))
		start = end
	}
	e.cur += len(src) + cursorGap
	e.flushFinal()
}

// rebase moves the table's positions down so that those of blocks from start on fit in int32;
// entries further back than cursorGap before start are dropped (they are out of the window).
func (e *Encoder) rebase(start int) {
	delta := e.cur + start - cursorGap
	if delta <= 0 {
		return
	}
	for i, v := range e.table {
		if int(v) < delta {
			e.table[i] = 0
		} else {
			e.table[i] = int32(int(v) - delta)
		}
	}
	e.cur -= delta
}

func load32(b []byte, i int) uint32 { return binary.LittleEndian.Uint32(b[i:]) }
func load64(b []byte, i int) uint64 { return binary.LittleEndian.Uint64(b[i:]) }

// hash is the table index of the hashBytes bytes at the bottom of u.
func hash(u uint64) uint32 {
	return uint32(((u << (64 - 8*hashBytes)) * 0xcf1bbcdcb7a56463) >> (64 - tableBits))
}

// matchLen is how many bytes of a equal those of b (len(b) >= len(a)).
func matchLen(a, b []byte) int {
	n := 0
	for len(a) >= 8 {
		if x := binary.LittleEndian.Uint64(a) ^ binary.LittleEndian.Uint64(b); x != 0 {
			return n + bits.TrailingZeros64(x)>>3
		}
		n += 8
		a, b = a[8:], b[8:]
	}
	b = b[:len(a)]
	for i := range a {
		if a[i] != b[i] {
			return n + i
		}
	}
	return n + len(a)
}

// lz fills e.seqs and the histograms for src[start:end]; matches may reach back before start
// (into earlier blocks) but not past end.
func (e *Encoder) lz(src []byte, start, end int) {
	e.seqs = e.seqs[:0]
	clear(e.litFreq[:])
	clear(e.distFreq[:])
	e.litFreq[256] = 1
	nextEmit := start
	sLimit := end - 8 // the loads at s-1 and s read up to src[s+7]
	if end-start < 16 {
		e.literals(src[nextEmit:end])
		return
	}
	cur := e.cur
	tab := &e.table
	s := start
	cand := 0
	for {
		// Look for a match at s, then s+probeStep...; the step grows with the length of the
		// literal run, as in Snappy.
		cv := load64(src, s)
		for {
			nextS := s + probeStep + (s-nextEmit)>>skipLog
			h0 := hash(cv)
			c0 := int(tab[h0]) - cur
			tab[h0] = int32(s + cur)
			if uint(s-c0-1) < maxDist && uint32(cv) == load32(src, c0) {
				cand = c0
				break
			}
			if nextS > sLimit {
				e.literals(src[nextEmit:end])
				return
			}
			s = nextS
			cv = load64(src, s)
		}
		// Extend backwards over the pending literals, up to 8 bytes (the probes are 4 apart).
		if cand >= 8 {
			k := bits.LeadingZeros64(load64(src, s-8)^load64(src, cand-8)) >> 3
			k = min(k, s-nextEmit)
			s -= k
			cand -= k
		} else {
			for cand > 0 && s > nextEmit && src[cand-1] == src[s-1] {
				cand--
				s--
			}
		}
		for {
			// A match at s from cand, of at least 4 bytes, after the literals from nextEmit.
			l := 4 + matchLen(src[s+4:end], src[cand+4:end])
			countLits(&e.litFreq, src, nextEmit, s)
			dc := distCodeOf(s - cand - 1)
			if l <= maxMatch {
				e.seqs = append(e.seqs, seq{lits: uint16(s - nextEmit), mlen: uint16(l), dist: uint16(s - cand - 1), dc: uint8(dc)})
				e.litFreq[257+int(lenCode[l-3])]++
				e.distFreq[dc]++
			} else {
				e.longMatch(s-nextEmit, l, s-cand, dc)
			}
			s += l
			nextEmit = s
			if s >= sLimit {
				e.literals(src[nextEmit:end])
				return
			}
			// Index s-1 and try s at once (runs of matches are common).
			x := load64(src, s-1)
			e.table[hash(x)] = int32(s - 1 + cur)
			h := hash(x >> 8)
			cand = int(e.table[h]) - cur
			e.table[h] = int32(s + cur)
			if uint(s-cand-1) >= maxDist || uint32(x>>8) != load32(src, cand) {
				s++
				break
			}
		}
	}
}

// literals records a literal run with no match after it.
func (e *Encoder) literals(lits []byte) {
	for _, b := range lits {
		e.litFreq[b]++
	}
	if len(lits) > 0 {
		e.seqs = append(e.seqs, seq{lits: uint16(len(lits))})
	}
}

// countLits adds src[i:j] to the literal histogram: four at a time, then up to three counted
// without branches (a match of at least 4 bytes follows j, so src[j:j+3] exists).
func countLits(freq *[286]uint32, src []byte, i, j int) {
	for ; i+4 <= j; i += 4 {
		b := src[i : i+4]
		freq[b[0]]++
		freq[b[1]]++
		freq[b[2]]++
		freq[b[3]]++
	}
	b := src[i : i+3]
	freq[b[0]] += uint32((i-j)>>63) & 1
	freq[b[1]] += uint32((i+1-j)>>63) & 1
	freq[b[2]] += uint32((i+2-j)>>63) & 1
}

// longMatch records n literals (already counted) and a match longer than 258, split.
func (e *Encoder) longMatch(n, l, dist, dc int) {
	for l > 0 {
		c := min(l, maxMatch)
		if l > maxMatch && l-maxMatch < 3 {
			c = l - 3 // leave a last piece of 3
		}
		e.seqs = append(e.seqs, seq{lits: uint16(n), mlen: uint16(c), dist: uint16(dist - 1), dc: uint8(dc)})
		e.litFreq[257+int(lenCode[c-3])]++
		e.distFreq[dc]++
		n = 0
		l -= c
	}
}

// distCodeOf is the distance code of distance v+1.
func distCodeOf(v int) int {
	if v < 4 {
		return v
	}
	nb := bits.Len32(uint32(v)) - 2
	return 2*nb + 2 + (v>>nb)&1
}

var (
	lenCode    [256]uint8 // length-3 -> length code - 257
	lenBase    = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lenExtra   = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase   = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra  = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
	clOrder    = [19]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
	fixedLen   [288]uint8
	fixedCode  [288]uint16
	fixedDLen  [30]uint8
	fixedDCode [30]uint16
)

func init() {
	for c := 0; c < 28; c++ {
		for l := int(lenBase[c]); l < int(lenBase[c])+1<<lenExtra[c] && l <= 258; l++ {
			lenCode[l-3] = uint8(c)
		}
	}
	lenCode[258-3] = 28
	for i := range fixedLen {
		switch {
		case i < 144:
			fixedLen[i] = 8
		case i < 256:
			fixedLen[i] = 9
		case i < 280:
			fixedLen[i] = 7
		default:
			fixedLen[i] = 8
		}
	}
	canonical(fixedLen[:], fixedCode[:])
	for i := range fixedDLen {
		fixedDLen[i] = 5
	}
	canonical(fixedDLen[:], fixedDCode[:])
}

// canonical sets the codes (bit-reversed, to be written LSB first) of code lengths (RFC 1951
// 3.2.2).
func canonical(lengths []uint8, codes []uint16) {
	var count [16]uint16
	for _, l := range lengths {
		count[l]++
	}
	count[0] = 0
	var next [16]uint16
	code := uint16(0)
	for b := 1; b < 16; b++ {
		code = (code + count[b-1]) << 1
		next[b] = code
	}
	for i, l := range lengths {
		if l != 0 {
			codes[i] = bits.Reverse16(next[l]) >> (16 - l)
			next[l]++
		}
	}
}

// huffLengths sets lengths for freq: a complete prefix code of at most maxBits bits; symbols
// with frequency 0 get 0, unless fewer than two are used, when one or two get length 1 (every
// decoder accepts a complete code).
func (e *Encoder) huffLengths(freq []uint32, lengths []uint8, maxBits int) {
	s := e.sorted[:0]
	for i, f := range freq {
		lengths[i] = 0
		if f != 0 {
			s = append(s, uint64(f)<<16|uint64(i))
		}
	}
	for i := 0; len(s) < 2; i++ {
		if freq[i] == 0 {
			s = append(s, uint64(i)) // frequency 0 sorts first
		}
	}
	slices.Sort(s)
	e.sorted = s
	n := len(s)
	// Moffat and Katajainen's in-place minimum-redundancy code lengths (as in miniz): a holds
	// the frequencies ascending, then parent indices, then depths.
	var buf [288]uint32
	a := buf[:n]
	for i, v := range s {
		a[i] = uint32(v >> 16)
	}
	a[0] += a[1]
	root, leaf := 0, 2
	for next := 1; next < n-1; next++ {
		if leaf >= n || a[root] < a[leaf] {
			a[next] = a[root]
			a[root] = uint32(next)
			root++
		} else {
			a[next] = a[leaf]
			leaf++
		}
		if leaf >= n || (root < next && a[root] < a[leaf]) {
			a[next] += a[root]
			a[root] = uint32(next)
			root++
		} else {
			a[next] += a[leaf]
			leaf++
		}
	}
	a[n-2] = 0
	for next := n - 3; next >= 0; next-- {
		a[next] = a[a[next]] + 1
	}
	avbl, used, depth := 1, 0, 0
	root, next := n-2, n-1
	for avbl > 0 {
		for root >= 0 && int(a[root]) == depth {
			used++
			root--
		}
		for avbl > used {
			a[next] = uint32(depth)
			next--
			avbl--
		}
		avbl = 2 * used
		depth++
		used = 0
	}
	// a[i] is now the depth of the i-th symbol by ascending frequency. Count per length,
	// clamp to maxBits and restore the Kraft sum (miniz's enforce_max_code_size).
	var count [16]int
	for _, d := range a {
		count[min(int(d), maxBits)]++
	}
	total := 0
	for i := maxBits; i > 0; i-- {
		total += count[i] << (maxBits - i)
	}
	for total != 1<<maxBits {
		count[maxBits]--
		for i := maxBits - 1; i > 0; i-- {
			if count[i] != 0 {
				count[i]--
				count[i+1] += 2
				break
			}
		}
		total--
	}
	j := n
	for l := 1; l <= maxBits; l++ {
		for c := count[l]; c > 0; c-- {
			j--
			lengths[s[j]&0xffff] = uint8(l)
		}
	}
}

// rleLengths encodes the code lengths of a dynamic header (symbols 0..18 with extra values) into
// e.rle, counting their frequencies into freq.
func (e *Encoder) rleLengths(lens []uint8, freq *[19]uint32) {
	r := e.rle[:0]
	for i := 0; i < len(lens); {
		l := lens[i]
		run := 1
		for i+run < len(lens) && lens[i+run] == l {
			run++
		}
		i += run
		if l == 0 {
			for run >= 11 {
				c := min(run, 138)
				r = append(r, 18|uint16(c-11)<<5)
				freq[18]++
				run -= c
			}
			if run >= 3 {
				r = append(r, 17|uint16(run-3)<<5)
				freq[17]++
				run = 0
			}
		} else {
			r = append(r, uint16(l))
			freq[l]++
			run--
			for run >= 3 {
				c := min(run, 6)
				r = append(r, 16|uint16(c-3)<<5)
				freq[16]++
				run -= c
			}
		}
		for ; run > 0; run-- {
			r = append(r, uint16(l))
			freq[l]++
		}
	}
	e.rle = r
}

var statFixed, statDyn int

var clExtra = [19]uint8{16: 2, 17: 3, 18: 7}

// writeBlock writes the block of src (the bytes e.seqs cover) as dynamic, fixed or stored,
// whichever is smallest.
func (e *Encoder) writeBlock(src []byte, final bool) {
	lf, df := &e.litFreq, &e.distFreq
	extra := 0
	for c := 0; c < 29; c++ {
		extra += int(lf[257+c]) * int(lenExtra[c])
	}
	for c := 0; c < 30; c++ {
		extra += int(df[c]) * int(distExtra[c])
	}
	fixedBits := 3 + extra
	for i, f := range lf {
		fixedBits += int(f) * int(fixedLen[i])
	}
	for _, f := range df {
		fixedBits += int(f) * 5
	}

	e.huffLengths(lf[:], e.litLen[:286], 14) // 14, not 15: four literals fit between flushes
	e.huffLengths(df[:], e.distLen[:], 15)
	nlit := 286
	for nlit > 257 && e.litLen[nlit-1] == 0 {
		nlit--
	}
	ndist := 30
	for ndist > 1 && e.distLen[ndist-1] == 0 {
		ndist--
	}
	var lens [286 + 30]uint8
	copy(lens[:], e.litLen[:nlit])
	copy(lens[nlit:], e.distLen[:ndist])
	var clFreq [19]uint32
	e.rleLengths(lens[:nlit+ndist], &clFreq)
	e.huffLengths(clFreq[:], e.clLen[:], 7)
	nclen := 19
	for nclen > 4 && e.clLen[clOrder[nclen-1]] == 0 {
		nclen--
	}
	dynBits := 3 + 5 + 5 + 4 + 3*nclen + extra
	for i, f := range clFreq {
		dynBits += int(f) * (int(e.clLen[i]) + int(clExtra[i]))
	}
	for i, f := range lf {
		dynBits += int(f) * int(e.litLen[i])
	}
	for i, f := range df {
		dynBits += int(f) * int(e.distLen[i])
	}
	storedBits := (len(src) + 5*((len(src)+65534)/65535)) * 8 // plus at most 7 bits of padding

	statFixed += fixedBits
	statDyn += dynBits
	var fin uint64
	if final {
		fin = 1
	}
	switch {
	case storedBits+7 <= fixedBits && storedBits+7 <= dynBits:
		e.writeStored(src, final)
	case fixedBits <= dynBits:
		e.reserve(fixedBits/8 + 16)
		e.writeBits(fin|1<<1, 3)
		e.writeSeqs(src, fixedLen[:], fixedCode[:], fixedDLen[:], fixedDCode[:])
	default:
		e.reserve(dynBits/8 + 16)
		canonical(e.litLen[:286], e.litCode[:286])
		canonical(e.distLen[:], e.distCode[:])
		canonical(e.clLen[:], e.clCode[:])
		e.writeBits(fin|2<<1, 3)
		e.writeBits(uint64(nlit-257), 5)
		e.writeBits(uint64(ndist-1), 5)
		e.writeBits(uint64(nclen-4), 4)
		for _, c := range clOrder[:nclen] {
			e.writeBits(uint64(e.clLen[c]), 3)
		}
		for _, r := range e.rle {
			sym := r & 31
			e.writeBits(uint64(e.clCode[sym]), uint(e.clLen[sym]))
			if x := clExtra[sym]; x != 0 {
				e.writeBits(uint64(r>>5), uint(x))
			}
		}
		e.writeSeqs(src, e.litLen[:], e.litCode[:], e.distLen[:], e.distCode[:])
	}
}

// writeSeqs writes e.seqs and the end of block with the given codes.
func (e *Encoder) writeSeqs(src []byte, litLen []uint8, litCode []uint16, distLen []uint8, distCode []uint16) {
	var lit [256]uint32
	group4 := true // four literal codes fit between flushes (7 + 4*14 bits)
	for i := range lit {
		lit[i] = uint32(litCode[i]) | uint32(litLen[i])<<24
		if litLen[i] > 14 {
			group4 = false
		}
	}
	for l := 0; l < 256; l++ {
		c := lenCode[l]
		hl := litLen[257+int(c)]
		v := uint32(litCode[257+int(c)]) | uint32(l+3-int(lenBase[c]))<<hl
		e.lenTab[l] = v | uint32(hl+lenExtra[c])<<24
	}
	for c := range e.distTab {
		e.distTab[c] = uint32(distCode[c]) | uint32(distLen[c])<<24
	}
	out, n, bw, nb := e.out, e.n, e.bits, e.nbits
	pos := 0
	for _, q := range e.seqs {
		i, j := pos, pos+int(q.lits)
		if group4 && j+3 <= len(src) {
			for ; i+4 <= j; i += 4 {
				b := src[i : i+4]
				t0, t1, t2, t3 := lit[b[0]], lit[b[1]], lit[b[2]], lit[b[3]]
				bw |= uint64(t0&0xffff) << nb
				nb += uint(t0 >> 24)
				bw |= uint64(t1&0xffff) << nb
				nb += uint(t1 >> 24)
				bw |= uint64(t2&0xffff) << nb
				nb += uint(t2 >> 24)
				bw |= uint64(t3&0xffff) << nb
				nb += uint(t3 >> 24)
				n, bw, nb = flushBits(out, n, bw, nb)
			}
			// The last 0..3 without branches: a code masked to nothing when past j.
			b := src[i : i+3]
			t0 := lit[b[0]] & uint32((i-j)>>63)
			t1 := lit[b[1]] & uint32((i+1-j)>>63)
			t2 := lit[b[2]] & uint32((i+2-j)>>63)
			bw |= uint64(t0&0xffff) << nb
			nb += uint(t0 >> 24)
			bw |= uint64(t1&0xffff) << nb
			nb += uint(t1 >> 24)
			bw |= uint64(t2&0xffff) << nb
			nb += uint(t2 >> 24)
			n, bw, nb = flushBits(out, n, bw, nb)
		} else {
			for _, b := range src[i:j] {
				t := lit[b]
				bw |= uint64(t&0xffff) << nb
				nb += uint(t >> 24)
				n, bw, nb = flushBits(out, n, bw, nb)
			}
		}
		pos += int(q.lits)
		if q.mlen == 0 {
			continue
		}
		t := e.lenTab[q.mlen-3]
		bw |= uint64(t&0xffffff) << nb
		nb += uint(t >> 24)
		v := int(q.dist)
		dc := int(q.dc)
		t = e.distTab[dc]
		hl := t >> 24
		bw |= (uint64(t&0xffff) | uint64(v+1-int(distBase[dc]))<<hl) << nb
		nb += uint(hl) + uint(distExtra[dc])
		n, bw, nb = flushBits(out, n, bw, nb)
		pos += int(q.mlen)
	}
	e.out, e.n, e.bits, e.nbits = out, n, bw, nb
	e.writeBits(uint64(litCode[256]), uint(litLen[256]))
}

// writeStored writes src as stored blocks of at most 65535 bytes.
func (e *Encoder) writeStored(src []byte, final bool) {
	for {
		c := min(len(src), 65535)
		var fin uint64
		if final && c == len(src) {
			fin = 1
		}
		e.reserve(c + 16)
		e.writeBits(fin, 3)
		e.alignByte()
		binary.LittleEndian.PutUint16(e.out[e.n:], uint16(c))
		binary.LittleEndian.PutUint16(e.out[e.n+2:], ^uint16(c))
		e.n += 4
		e.n += copy(e.out[e.n:], src[:c])
		src = src[c:]
		if len(src) == 0 {
			return
		}
	}
}

// reserve makes room for k more bytes plus the 8 a flush stores.
func (e *Encoder) reserve(k int) {
	need := e.n + k + 8
	if need > len(e.out) {
		e.out = slices.Grow(e.out, need-len(e.out)) // keeps the byte of pending bits at e.n
		e.out = e.out[:cap(e.out)]
	}
}

func (e *Encoder) writeBits(v uint64, nb uint) {
	e.n, e.bits, e.nbits = flushBits(e.out, e.n, e.bits|v<<e.nbits, e.nbits+nb)
}

// flushBits stores the pending bits (8 bytes at once: the output keeps that much spare room) and
// advances by the whole bytes among them; small enough to be inlined into the hot loops.
func flushBits(out []byte, n int, bw uint64, nb uint) (int, uint64, uint) {
	binary.LittleEndian.PutUint64(out[n:], bw)
	k := nb >> 3
	return n + int(k), bw >> (k << 3), nb & 7
}

// alignByte pads with zero bits to a byte boundary (pending bits are already stored).
func (e *Encoder) alignByte() {
	if e.nbits > 0 {
		e.n++
		e.bits, e.nbits = 0, 0
	}
}

func (e *Encoder) flushFinal() {
	e.reserve(8)
	e.alignByte()
}
