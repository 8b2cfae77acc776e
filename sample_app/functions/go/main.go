// The sample's Go function (provided.al2023): records every object put under `go/` in DynamoDB.
//
// Standard library only, so it builds offline with no module proxy: the Lambda Runtime API
// loop (what aws-lambda-go would provide) and a Signature Version 4 signed DynamoDB PutItem
// (what the AWS SDK would provide). Lambda gives it credentials and the region in the
// environment; AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL point it elsewhere (the local
// demo's stand-in), as they do for the AWS SDKs.
package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

const runtimeAPIVersion = "/2018-06-01/runtime"

type s3Event struct {
	Records []struct {
		EventTime string `json:"eventTime"`
		S3        struct {
			Bucket struct {
				Name string `json:"name"`
			} `json:"bucket"`
			Object struct {
				Key  string `json:"key"`
				Size int64  `json:"size"`
			} `json:"object"`
		} `json:"s3"`
	} `json:"Records"`
}

type function struct {
	table    string
	region   string
	endpoint string
	client   *http.Client
}

func main() {
	// One line per log call, no timestamp: Lambda stamps every line itself.
	log.SetFlags(0)
	log.SetOutput(os.Stdout)
	api := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + runtimeAPIVersion
	region := envOr("AWS_REGION", "us-east-1")
	fn := &function{
		table:    os.Getenv("TABLE_NAME"),
		region:   region,
		endpoint: envOr("AWS_ENDPOINT_URL_DYNAMODB", envOr("AWS_ENDPOINT_URL", "https://dynamodb."+region+".amazonaws.com")),
		client:   &http.Client{Timeout: 5 * time.Second},
	}
	if fn.table == "" {
		post(api+"/init/error", errorDoc("ConfigError", "TABLE_NAME is not set"))
		os.Exit(1)
	}
	for {
		resp, err := http.Get(api + "/invocation/next")
		if err != nil {
			fmt.Fprintln(os.Stderr, "runtime API next failed:", err)
			os.Exit(1)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
		result, err := fn.handle(body)
		if err != nil {
			log.Printf("ERROR %v", err)
			post(api+"/invocation/"+id+"/error", errorDoc("PutItemError", err.Error()))
			continue
		}
		post(api+"/invocation/"+id+"/response", result)
	}
}

func (fn *function) handle(payload []byte) ([]byte, error) {
	var event s3Event
	if err := json.Unmarshal(payload, &event); err != nil {
		return nil, fmt.Errorf("not an S3 event: %w", err)
	}
	log.Printf("received %d S3 record(s)", len(event.Records))
	written := 0
	for _, record := range event.Records {
		bucket := record.S3.Bucket.Name
		// S3 URL-encodes keys in notifications (a space arrives as '+').
		key, err := url.QueryUnescape(record.S3.Object.Key)
		if err != nil {
			return nil, fmt.Errorf("bad object key %q: %w", record.S3.Object.Key, err)
		}
		meta, err := fn.putItem(map[string]map[string]string{
			"key":       {"S": key},
			"bucket":    {"S": bucket},
			"size":      {"N": strconv.FormatInt(record.S3.Object.Size, 10)},
			"eventTime": {"S": record.EventTime},
			"writer":    {"S": "go"},
		})
		if err != nil {
			return nil, err
		}
		log.Printf("put_item %s: %s", key, meta)
		log.Printf("stored s3://%s/%s in %s", bucket, key, fn.table)
		written++
	}
	return json.Marshal(map[string]int{"written": written})
}

// putItem sends DynamoDB's PutItem (JSON 1.0 protocol) and returns the response metadata as JSON.
func (fn *function) putItem(item map[string]map[string]string) (string, error) {
	body, _ := json.Marshal(map[string]any{"TableName": fn.table, "Item": item})
	target, err := url.Parse(fn.endpoint)
	if err != nil {
		return "", fmt.Errorf("bad DynamoDB endpoint %q: %w", fn.endpoint, err)
	}
	req, _ := http.NewRequest(http.MethodPost, target.String(), bytes.NewReader(body))
	sign(req, body, fn.region, "DynamoDB_20120810.PutItem", time.Now().UTC())
	resp, err := fn.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("DynamoDB PutItem: %w", err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return "", fmt.Errorf("DynamoDB PutItem answered %d: %s", resp.StatusCode, answer)
	}
	meta, _ := json.Marshal(map[string]any{
		"HTTPStatusCode": resp.StatusCode,
		"RequestId":      resp.Header.Get("X-Amzn-Requestid"),
		"RetryAttempts":  0,
	})
	return string(meta), nil
}

// sign adds Signature Version 4 headers for DynamoDB: POST / with the operation in X-Amz-Target.
func sign(req *http.Request, body []byte, region, target string, now time.Time) {
	amzDate := now.Format("20060102T150405Z")
	day := amzDate[:8]
	headers := map[string]string{
		"content-type": "application/x-amz-json-1.0",
		"host":         req.URL.Host,
		"x-amz-date":   amzDate,
		"x-amz-target": target,
	}
	if token := os.Getenv("AWS_SESSION_TOKEN"); token != "" {
		headers["x-amz-security-token"] = token
	}
	names := make([]string, 0, len(headers))
	for name := range headers {
		names = append(names, name)
	}
	sort.Strings(names)
	var canonicalHeaders strings.Builder
	for _, name := range names {
		canonicalHeaders.WriteString(name + ":" + headers[name] + "\n")
	}
	signedHeaders := strings.Join(names, ";")
	canonical := strings.Join([]string{
		"POST", "/", "", canonicalHeaders.String(), signedHeaders, hexSHA256(body),
	}, "\n")
	scope := day + "/" + region + "/dynamodb/aws4_request"
	toSign := strings.Join([]string{"AWS4-HMAC-SHA256", amzDate, scope, hexSHA256([]byte(canonical))}, "\n")
	key := []byte("AWS4" + os.Getenv("AWS_SECRET_ACCESS_KEY"))
	for _, part := range []string{day, region, "dynamodb", "aws4_request"} {
		key = hmacSHA256(key, part)
	}
	for name, value := range headers {
		if name != "host" { // net/http sends Host from the URL: the value that was signed
			req.Header.Set(name, value)
		}
	}
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+os.Getenv("AWS_ACCESS_KEY_ID")+"/"+scope+
		", SignedHeaders="+signedHeaders+", Signature="+hex.EncodeToString(hmacSHA256(key, toSign)))
}

func hexSHA256(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func hmacSHA256(key []byte, data string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(data))
	return mac.Sum(nil)
}

func errorDoc(kind, message string) []byte {
	doc, _ := json.Marshal(map[string]string{"errorType": kind, "errorMessage": message})
	return doc
}

func post(url string, body []byte) {
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		fmt.Fprintln(os.Stderr, "runtime API post failed:", err)
		os.Exit(1)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

func envOr(name, fallback string) string {
	if value := os.Getenv(name); value != "" {
		return value
	}
	return fallback
}
