package ext

import (
	"math"
	"reflect"
	"strings"
	"testing"
)

func lines(c Converted) []string {
	out := make([]string, len(c.Entries))
	for i, e := range c.Entries {
		out[i] = e.Line
	}
	return out
}

func TestIsoToNs(t *testing.T) {
	var c isoCache
	for in, want := range map[string]int64{
		"2024-01-02T03:04:05.678Z":       1704164645678000000,
		"2024-01-02T03:04:05Z":           1704164645000000000,
		"2024-01-02T03:04:05.123456789Z": 1704164645123456789,
		"2024-01-02T05:04:05.678+02:00":  1704164645678000000,
		"1970-01-01T00:00:00.000Z":       0,
	} {
		got, ok := c.isoToNs(in)
		if !ok || got != want {
			t.Errorf("%s: %d %v, want %d", in, got, ok, want)
		}
	}
	// Outside int64 ns (before 1970, after 2262-04-11T23:47:16.854775807Z): Loki cannot store it.
	if got, ok := c.isoToNs("2262-04-11T23:47:16.854775807Z"); !ok || got != math.MaxInt64 {
		t.Errorf("the last representable time: %d %v", got, ok)
	}
	for _, bad := range []string{"", "2024-01-02", "2024-13-02T03:04:05Z", "2024-01-02T03:04:05.Z", "2024-01-02T03:04:05X",
		"9999-12-31T23:59:59.999Z", "2262-04-11T23:47:16.854775808Z", "1969-12-31T23:59:59.999Z"} {
		if _, ok := c.isoToNs(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestTextFormatLevelAndRequestID(t *testing.T) {
	level, rid := textLevelAndRequest("[INFO]\t2024-01-02T03:04:05.678Z\t8f5e4c1a-0000-4000-8000-000000000001\thello")
	if level != "INFO" || rid != "8f5e4c1a-0000-4000-8000-000000000001" {
		t.Fatalf("got %q %q", level, rid)
	}
	if l, r := textLevelAndRequest("[warning] x"); l != "WARNING" || r != "" {
		t.Fatalf("got %q %q", l, r)
	}
	if l, r := textLevelAndRequest("[NOPE] x"); l != "" || r != "" {
		t.Fatalf("got %q %q", l, r)
	}
}

func TestConvertFunctionLinesMetadataAndRepeats(t *testing.T) {
	c := NewConverter(false, false, 256000, false)
	out := c.Convert([]byte(`[
	 {"time":"2024-01-02T03:04:05.000Z","type":"platform.start","record":{"requestId":"r1","version":"$LATEST"}},
	 {"time":"2024-01-02T03:04:05.001Z","type":"function","record":"x\n"},
	 {"time":"2024-01-02T03:04:05.001Z","type":"function","record":"x\n"},
	 {"time":"2024-01-02T03:04:05.001Z","type":"function","record":"y\n"},
	 {"time":"2024-01-02T03:04:05.001Z","type":"function","record":"x\n"},
	 {"time":"2024-01-02T03:04:05.002Z","type":"function","record":"x\r\n"},
	 {"time":"2024-01-02T03:04:05.003Z","type":"function","record":{"level":"warn","message":"m","requestId":"r2","tenantId":"t1"}},
	 {"time":"2024-01-02T03:04:05.004Z","type":"platform.runtimeDone","record":{"requestId":"r1","status":"success"}},
	 42, "junk"
	]`))
	want := []string{"x", "x", "y", "x", "x", `{"level":"warn","message":"m","requestId":"r2","tenantId":"t1"}`}
	if !reflect.DeepEqual(lines(out), want) {
		t.Fatalf("lines %q", lines(out))
	}
	base := int64(1704164645001000000)
	ts := []int64{out.Entries[0].Ts, out.Entries[1].Ts, out.Entries[2].Ts, out.Entries[3].Ts, out.Entries[4].Ts}
	if !reflect.DeepEqual(ts, []int64{base, base + 1, base, base + 2, base + 1000000}) {
		t.Fatalf("timestamps %v", ts)
	}
	if m := out.Entries[0].Meta; m == nil || m.RequestID != "r1" || m.Level != "" {
		t.Fatalf("print line metadata %+v", m)
	}
	if m := out.Entries[5].Meta; m.RequestID != "r2" || m.Level != "WARN" || m.TenantID != "t1" {
		t.Fatalf("json record metadata %+v", m)
	}
	if !reflect.DeepEqual(out.RuntimeDone, []RuntimeDone{{"r1", 1704164645004000000}}) {
		t.Fatalf("runtimeDone %v", out.RuntimeDone)
	}
}

func TestManagedInstancesTakeRequestIDFromTheRecordOnly(t *testing.T) {
	c := NewConverter(false, false, 256000, true)
	out := c.Convert([]byte(`[
	 {"time":"2024-01-02T03:04:05.000Z","type":"platform.start","record":{"requestId":"r1"}},
	 {"time":"2024-01-02T03:04:05.001Z","type":"function","record":"plain print\n"}]`))
	if len(out.Entries) != 1 || out.Entries[0].Meta != nil {
		t.Fatalf("a print line got a request id on Managed Instances: %+v", out.Entries)
	}
}

func TestExtensionRecordsOwnDiagnosticsAreFiltered(t *testing.T) {
	c := NewConverter(false, true, 256000, false)
	out := c.Convert([]byte(`[
	 {"time":"2024-01-02T03:04:05.000Z","type":"extension","record":"[loki-telemetry-extension] log entries lost so far: x\n"},
	 {"time":"2024-01-02T03:04:05.000Z","type":"extension","record":{"message":"  [loki-telemetry-extension] y"}},
	 {"time":"2024-01-02T03:04:05.000Z","type":"extension","record":"other extension\n"}]`))
	if !reflect.DeepEqual(lines(out), []string{"other extension"}) || out.Entries[0].Stream != StreamExtension {
		t.Fatalf("got %+v", out.Entries)
	}
}

func TestPlatformRenderingAndLogsDropped(t *testing.T) {
	c := NewConverter(true, false, 256000, false)
	out := c.Convert([]byte(`[
	 {"time":"2024-01-02T03:04:05.000Z","type":"platform.start","record":{"requestId":"r1","version":"$LATEST"}},
	 {"time":"2024-01-02T03:04:05.000Z","type":"platform.runtimeDone","record":{"requestId":"r1","status":"success","metrics":{"durationMs":1.7234,"producedBytes":12}}},
	 {"time":"2024-01-02T03:04:05.000Z","type":"platform.report","record":{"requestId":"r1","status":"success","metrics":{"durationMs":2.5,"billedDurationMs":3,"memorySizeMB":128,"maxMemoryUsedMB":40,"initDurationMs":100.25}}},
	 {"time":"2024-01-02T03:04:05.000Z","type":"platform.initStart","record":{"runtimeVersion":"v1","phase":"init","initializationType":"on-demand"}},
	 {"time":"2024-01-02T03:04:05.000Z","type":"platform.logsDropped","record":{"droppedRecords":7,"droppedBytes":700,"reason":"slow"}},
	 {"time":"2024-01-02T03:04:05.000Z","type":"platform.extension","record":{"name":"e","state":"Ready","events":["INVOKE"]}}]`))
	want := []string{
		"START RequestId: r1 Version: $LATEST",
		"END RequestId: r1\tStatus: success\tDuration: 1.72 ms\tProduced Bytes: 12",
		"REPORT RequestId: r1\tDuration: 2.50 ms\tBilled Duration: 3 ms\tMemory Size: 128 MB\tMax Memory Used: 40 MB\tInit Duration: 100.25 ms\tStatus: success",
		"INIT_START Runtime Version: v1\tPhase: init\tType: on-demand",
		"LOGS_DROPPED Dropped Records: 7\tDropped Bytes: 700\tReason: slow",
		`EXTENSION {"name":"e","state":"Ready","events":["INVOKE"]}`,
	}
	if !reflect.DeepEqual(lines(out), want) {
		t.Fatalf("got\n%s", strings.Join(lines(out), "\n"))
	}
	if out.LambdaDroppedRecords != 7 {
		t.Fatalf("dropped %d", out.LambdaDroppedRecords)
	}
}

func TestOversizeLinesAreSplitOnRuneBoundaries(t *testing.T) {
	line := strings.Repeat("é", 1500) // 3000 bytes
	parts := SplitLine(line, 1024)
	if len(parts) != 4 { // 992 bytes of room per part (1024 - 32 for the marker), as the Python build
		t.Fatalf("%d parts", len(parts))
	}
	joined := ""
	for i, p := range parts {
		if len(p) > 1024 {
			t.Fatalf("part %d is %d bytes", i, len(p))
		}
		suffix := " [split " + string(rune('1'+i)) + "/4]"
		if !strings.HasSuffix(p, suffix) {
			t.Fatalf("part %d: %q", i, p[len(p)-20:])
		}
		joined += strings.TrimSuffix(p, suffix)
	}
	if joined != line {
		t.Fatal("parts do not join back to the line")
	}
	c := NewConverter(false, false, 1024, false)
	out := c.Convert([]byte(`[{"time":"2024-01-02T03:04:05.000Z","type":"function","record":"` + line + `"}]`))
	if len(out.Entries) != 4 || out.Entries[1].Ts != out.Entries[0].Ts+1 || out.Entries[3].Ts != out.Entries[0].Ts+3 {
		t.Fatalf("split entries %+v", len(out.Entries))
	}
}

func TestSplitLeavesRoomForFoldedMetadata(t *testing.T) {
	c := NewConverter(false, false, 1024, false)
	line := strings.Repeat("a", 1020)
	out := c.Convert([]byte(`[{"time":"2024-01-02T03:04:05.000Z","type":"platform.start","record":{"requestId":"8f5e4c1a-0000-4000-8000-000000000001"}},
	 {"time":"2024-01-02T03:04:05.000Z","type":"function","record":"` + line + `"}]`))
	if len(out.Entries) != 2 {
		t.Fatalf("a line that does not fit with its metadata folded in was not split: %d entries", len(out.Entries))
	}
	for _, e := range out.Entries {
		if n := len(FoldMetadata(e.Line, e.Meta)); n > 1024 {
			t.Fatalf("folded part is %d bytes", n)
		}
	}
}
