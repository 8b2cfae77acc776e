package ext

import (
	"encoding/json"
	"os"
	"reflect"
	"testing"
)

func stdItems(t *testing.T, body []byte) ([]item, bool) {
	t.Helper()
	var raws []rawItem
	if err := json.Unmarshal(body, &raws); err != nil {
		if _, ok := err.(*json.UnmarshalTypeError); !ok {
			return nil, false
		}
	}
	items := make([]item, len(raws))
	for i := range raws {
		items[i] = raws[i].toItem()
	}
	return items, true
}

// The hand parser must read every delivery exactly as encoding/json does, or refuse it.
func TestHandParserAgreesWithEncodingJSON(t *testing.T) {
	bodies := []string{
		`[]`, ` [ ] `, `[{}]`, `[1,"x",null,{"type":"function"}]`,
		`[{"time":"2024-05-06T07:08:09.123Z","type":"function","record":"a \"q\" \\ \/ \n\t\u00e9 \ud83d\ude00 \ud800 x"}]`,
		`[{"record":{"a":[1,2.5e3,-0.1,true,false,null,{"b":"c\"}"}]},"type":"function","time":"t"}]`,
		`[{"record":[1,2],"type":"extension"},{"record":42},{"record":null},{"record":"s","record":{"k":1}}]`,
		`[{"time":123,"type":["x"],"record":"r"}]`,
		`[{"type":"function","record":"same"},{"type":"function","record":"same"}]`,
		`[{"type":"a\\","record":"x"},{"type":"a\\","record":"y"}]`,
	}
	raw, err := os.ReadFile("testdata/records_parity.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Steps []struct {
			Body string `json:"body"`
		} `json:"steps"`
	}
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		for _, s := range c.Steps {
			bodies = append(bodies, s.Body)
		}
	}
	for _, b := range bodies {
		got, ok := parseDelivery([]byte(b))
		want, wok := stdItems(t, []byte(b))
		if !ok || !wok {
			t.Errorf("%s: hand parser ok=%v, encoding/json ok=%v", b, ok, wok)
			continue
		}
		for i := range got {
			if string(got[i].recRaw) == "" {
				got[i].recRaw = nil
			}
			if string(want[i].recRaw) == "" {
				want[i].recRaw = nil
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", b, got, want)
		}
	}
	for _, bad := range []string{``, `[`, `[{"a":1}`, `[{"a":"x` + "\n" + `"}]`, `{"a":1}`, `[1,]`, `[{"a":tru}]`, `[] x`} {
		if _, ok := parseDelivery([]byte(bad)); ok {
			t.Errorf("%q accepted", bad)
		}
	}
}
