package ext

import "testing"

// AWS's published SigV4 test-suite vectors (get-vanilla, get-vanilla-query-order-key-case,
// post-vanilla, get-utf8); the Python build's tests use the same.
func TestSigV4MatchesAWSTestSuite(t *testing.T) {
	const prefix = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature="
	cases := []struct {
		method, path string
		query        map[string]string
		sig          string
	}{
		{"GET", "/", nil, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
		{"GET", "/", map[string]string{"Param2": "value2", "Param1": "value1"}, "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
		{"POST", "/", nil, "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
		{"GET", "/\u1234", nil, "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"},
	}
	for _, c := range cases {
		out := SignV4(SigV4Request{Method: c.method, Host: "example.amazonaws.com", Path: c.path, Query: c.query,
			Region: "us-east-1", Service: "service", AccessKey: "AKIDEXAMPLE",
			Secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", AmzDate: "20150830T123600Z"})
		if out["Authorization"] != prefix+c.sig || out["X-Amz-Date"] != "20150830T123600Z" {
			t.Errorf("%s %s: %s", c.method, c.path, out["Authorization"])
		}
	}
}

func TestAuthHeaders(t *testing.T) {
	if h, err := BasicAuthHeader(`{"username": "u", "password": "p"}`); err != nil || h != "Basic dTpw" {
		t.Fatalf("%q %v", h, err)
	}
	if h, err := BasicAuthHeader("u:p"); err != nil || h != "Basic dTpw" {
		t.Fatalf("%q %v", h, err)
	}
	if _, err := BasicAuthHeader("nocolon"); err == nil {
		t.Fatal("accepted a basic-auth secret without a colon")
	}
	if h, err := BearerHeader(`{"token": " t "}`); err != nil || h != "Bearer t" {
		t.Fatalf("%q %v", h, err)
	}
	if _, err := BearerHeader("a\nb"); err == nil {
		t.Fatal("accepted a token with a line break")
	}
}
