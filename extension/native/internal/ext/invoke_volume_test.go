package ext

import (
	"encoding/json"
	"os"
	"testing"
)

// The same table as the Python build's tests/extension/test_invoke_volume.py.
func TestHighWaterMarkTable(t *testing.T) {
	raw, err := os.ReadFile("testdata/high_water_mark.json")
	if err != nil {
		t.Fatal(err)
	}
	var table struct {
		Cases []struct {
			MaxBufferBytes int    `json:"max_buffer_bytes"`
			Percent        int    `json:"percent"`
			LargestInvoke  int    `json:"largest_invoke"`
			PreviousDone   bool   `json:"previous_done"`
			Mark           int    `json:"mark"`
			Why            string `json:"why"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(raw, &table); err != nil {
		t.Fatal(err)
	}
	if len(table.Cases) == 0 {
		t.Fatal("empty table")
	}
	for _, c := range table.Cases {
		if got := highWaterMark(c.MaxBufferBytes, c.Percent, c.LargestInvoke, c.PreviousDone); got != c.Mark {
			t.Errorf("%s: highWaterMark = %d, want %d", c.Why, got, c.Mark)
		}
	}
}

func TestInvokeVolumesCountFromOneRuntimeDoneToTheNext(t *testing.T) {
	var v invokeVolumes
	v.add(100)
	v.add(50)
	if v.largest() != 150 {
		t.Fatalf("open invoke not counted: %d", v.largest())
	}
	v.invokeDone()
	v.add(20)
	v.invokeDone()
	for i := 0; i < VolumeMemory-1; i++ {
		v.invokeDone()
	}
	if v.largest() != 20 {
		t.Fatalf("after %d invokes the 150-byte one must be forgotten: %d", VolumeMemory, v.largest())
	}
	v.invokeDone()
	if v.largest() != 0 {
		t.Fatalf("want 0, got %d", v.largest())
	}
}
