package ext

// How much each invoke wrote, and the high-water mark that keeps room for the next one (the
// Python build's invoke_volume.py, rule for rule).
//
// The mark is checked when an INVOKE arrives, while that invoke already writes: the room above
// it must hold what the invoke writes. A fixed percentage alone does not: with a slow Loki the
// backlog sits just under the mark, and an invoke that writes half the buffer then evicts the
// oldest lines. So the mark is also lowered to leave room for the largest invoke of the last
// VolumeMemory. While the previous invoke's lines may still be on their way (its
// platform.runtimeDone, delivered after them, has not arrived) the invoke that just started
// writes on top of an unknown remainder: the mark is then halved and the room doubled.

// VolumeMemory: invokes remembered for the largest-invoke estimate (about 2 s of dense traffic
// at 10/s, so one large invoke keeps the room open for the large invokes that usually follow).
const VolumeMemory = 16

// highWaterMark is the held bytes from which a push before next is due (0: push everything).
func highWaterMark(maxBufferBytes, percent, largestInvoke int, previousDone bool) int {
	mark, reserve := maxBufferBytes*percent/100, largestInvoke
	if !previousDone {
		mark, reserve = maxBufferBytes*percent/200, 2*largestInvoke
	}
	return max(0, min(mark, maxBufferBytes-reserve))
}

// invokeVolumes: buffer bytes accepted per invoke, from one platform.runtimeDone to the next.
type invokeVolumes struct {
	closed [VolumeMemory]int
	next   int // ring index of the next closed volume
	open   int
}

// add records bytes the buffer accepted (before any eviction).
func (v *invokeVolumes) add(cost int) { v.open += cost }

// invokeDone: a platform.runtimeDone arrived; what came since the previous one was its invoke's.
func (v *invokeVolumes) invokeDone() {
	v.closed[v.next] = v.open
	v.next = (v.next + 1) % VolumeMemory
	v.open = 0
}

// largest is the largest remembered invoke, the one still being written included.
func (v *invokeVolumes) largest() int {
	m := v.open
	for _, c := range v.closed {
		m = max(m, c)
	}
	return m
}
