package ext

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Credentials fetched once from Secrets Manager or SSM Parameter Store (secrets.py): the two
// JSON-protocol calls are signed with SigV4 here, with the function's credentials from the
// environment. AWS_ENDPOINT_URL_SECRETS_MANAGER / AWS_ENDPOINT_URL_SSM / AWS_ENDPOINT_URL are
// honoured. Secret values are never logged; errors name the ARN and the AWS error code only.

const (
	sigAlgorithm       = "AWS4-HMAC-SHA256"
	secretFetchTimeout = 5 * time.Second
)

type awsService struct{ signingName, prefix, target, override string }

var awsServices = map[string]awsService{
	"secretsmanager": {"secretsmanager", "secretsmanager", "secretsmanager.GetSecretValue", "AWS_ENDPOINT_URL_SECRETS_MANAGER"},
	"ssm":            {"ssm", "ssm", "AmazonSSM.GetParameter", "AWS_ENDPOINT_URL_SSM"},
}

// SecretError: the secret could not be fetched or understood (the message is safe to log).
type SecretError struct{ Msg string }

func (e *SecretError) Error() string { return e.Msg }

func secretErr(format string, a ...any) error { return &SecretError{fmt.Sprintf(format, a...)} }

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// uriEncode is RFC 3986 percent-encoding with only A-Z a-z 0-9 - _ . ~ left as they are.
func uriEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// SigV4Request is what SignV4 needs.
type SigV4Request struct {
	Method, Host, Path string
	Query              map[string]string
	Headers            map[string]string
	Body               []byte
	Region, Service    string
	AccessKey, Secret  string
	SessionToken       string
	AmzDate            string // like 20150830T123600Z
}

// SignV4 returns the headers to add for AWS Signature Version 4.
func SignV4(r SigV4Request) map[string]string {
	out := map[string]string{"X-Amz-Date": r.AmzDate}
	if r.SessionToken != "" {
		out["X-Amz-Security-Token"] = r.SessionToken
	}
	all := map[string]string{}
	for k, v := range r.Headers {
		all[strings.ToLower(k)] = strings.Join(strings.Fields(strings.TrimSpace(v)), " ")
	}
	all["host"] = r.Host
	for k, v := range out {
		all[strings.ToLower(k)] = v
	}
	names := make([]string, 0, len(all))
	for n := range all {
		names = append(names, n)
	}
	sort.Strings(names)
	var ch strings.Builder
	for _, n := range names {
		ch.WriteString(n + ":" + all[n] + "\n")
	}
	signed := strings.Join(names, ";")
	qk := make([]string, 0, len(r.Query))
	for k := range r.Query {
		qk = append(qk, k)
	}
	sort.Strings(qk)
	qs := make([]string, len(qk))
	for i, k := range qk {
		qs[i] = uriEncode(k) + "=" + uriEncode(r.Query[k])
	}
	path := r.Path
	if path == "" {
		path = "/"
	}
	segs := strings.Split(path, "/")
	for i, s := range segs {
		segs[i] = uriEncode(s)
	}
	canonical := strings.Join([]string{r.Method, strings.Join(segs, "/"), strings.Join(qs, "&"), ch.String(), signed, sha256Hex(r.Body)}, "\n")
	date := r.AmzDate[:8]
	scope := date + "/" + r.Region + "/" + r.Service + "/aws4_request"
	toSign := strings.Join([]string{sigAlgorithm, r.AmzDate, scope, sha256Hex([]byte(canonical))}, "\n")
	key := hmacSHA256([]byte("AWS4"+r.Secret), date)
	for _, p := range []string{r.Region, r.Service, "aws4_request"} {
		key = hmacSHA256(key, p)
	}
	sig := hex.EncodeToString(hmacSHA256(key, toSign))
	out["Authorization"] = fmt.Sprintf("%s Credential=%s/%s, SignedHeaders=%s, Signature=%s", sigAlgorithm, r.AccessKey, scope, signed, sig)
	return out
}

func awsEndpoint(env map[string]string, svc awsService, region, partition string) string {
	u := strings.TrimSpace(env[svc.override])
	if u == "" {
		u = strings.TrimSpace(env["AWS_ENDPOINT_URL"])
	}
	if u != "" {
		return u
	}
	suffix := "amazonaws.com"
	if partition == "aws-cn" {
		suffix = "amazonaws.com.cn"
	}
	return "https://" + svc.prefix + "." + region + "." + suffix
}

func awsCall(env map[string]string, arn string, now time.Time) (map[string]any, error) {
	parts := strings.Split(arn, ":")
	if len(parts) < 6 || parts[0] != "arn" {
		return nil, secretErr("not a Secrets Manager or SSM ARN: %s", pyRepr(arn))
	}
	svc, ok := awsServices[parts[2]]
	if !ok {
		return nil, secretErr("not a Secrets Manager or SSM ARN: %s", pyRepr(arn))
	}
	partition, region := parts[1], parts[3]
	if region == "" {
		region = env["AWS_REGION"]
	}
	if region == "" {
		return nil, secretErr("no region in %s and AWS_REGION is not set", pyRepr(arn))
	}
	ak, sk := env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
	if ak == "" || sk == "" {
		return nil, secretErr("AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are not set in the environment")
	}
	var payload any
	if parts[2] == "secretsmanager" {
		payload = map[string]any{"SecretId": arn}
	} else {
		// GetParameter takes the name, or the full ARN for parameters of this account.
		payload = map[string]any{"Name": arn, "WithDecryption": true}
	}
	body, _ := json.Marshal(payload)
	endpoint := awsEndpoint(env, svc, region, partition)
	_, rest, _ := strings.Cut(endpoint, "://")
	authority, basePath, _ := strings.Cut(rest, "/")
	headers := map[string]string{"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": svc.target}
	for k, v := range SignV4(SigV4Request{Method: "POST", Host: authority, Path: "/" + basePath, Body: body,
		Headers: headers, Region: region, Service: svc.signingName, AccessKey: ak, Secret: sk,
		SessionToken: env["AWS_SESSION_TOKEN"], AmzDate: now.UTC().Format("20060102T150405Z")}) {
		headers[k] = v
	}
	headers["Connection"] = "close"
	u, err := url.Parse(strings.TrimRight(endpoint, "/"))
	if err != nil {
		return nil, secretErr("cannot reach the endpoint for %s: %v", pyRepr(arn), err)
	}
	u.Path = "/" + basePath
	client := &http.Client{Transport: newTransport(), Timeout: secretFetchTimeout}
	resp, err := call(client, http.MethodPost, u.String(), headers, body)
	if err != nil {
		return nil, secretErr("cannot reach the endpoint for %s: %v", pyRepr(arn), err)
	}
	if resp.Status != 200 {
		code := ""
		var e map[string]any
		if json.Unmarshal(resp.Body, &e) == nil {
			if t, ok := e["__type"].(string); ok {
				code = t[strings.LastIndex(t, "#")+1:]
			}
		}
		return nil, secretErr("%s", strings.TrimRight(fmt.Sprintf("%s for %s answered HTTP %d %s", svc.target, pyRepr(arn), resp.Status, code), " "))
	}
	var out map[string]any
	if err := json.Unmarshal(resp.Body, &out); err != nil {
		return nil, secretErr("%s for %s returned a body that is not JSON", svc.target, pyRepr(arn))
	}
	return out, nil
}

// FetchSecretString is the secret's string (SecretString, or the SSM parameter's value).
func FetchSecretString(env map[string]string, arn string) (string, error) {
	result, err := awsCall(env, arn, time.Now())
	if err != nil {
		return "", err
	}
	if strings.Contains(arn, ":secretsmanager:") {
		v, ok := result["SecretString"].(string)
		if !ok {
			return "", secretErr("secret %s has no SecretString (binary secrets are not supported)", pyRepr(arn))
		}
		return v, nil
	}
	p, _ := result["Parameter"].(map[string]any)
	v, ok := p["Value"].(string)
	if !ok {
		return "", secretErr("parameter %s has no Value", pyRepr(arn))
	}
	return v, nil
}

func maybeJSONObject(value string) map[string]any {
	s := strings.TrimSpace(value)
	if !strings.HasPrefix(s, "{") {
		return nil
	}
	var m map[string]any
	if json.Unmarshal([]byte(s), &m) != nil {
		return nil
	}
	return m
}

// BasicAuthHeader from "user:password" or {"username": …, "password": …}.
func BasicAuthHeader(value string) (string, error) {
	var pair string
	if obj := maybeJSONObject(value); obj != nil {
		user, ok := obj["username"]
		if !ok {
			user = obj["user"]
		}
		u, ok1 := user.(string)
		p, ok2 := obj["password"].(string)
		if !ok1 || !ok2 {
			return "", secretErr(`basic-auth secret JSON needs string "username" and "password" keys`)
		}
		pair = u + ":" + p
	} else {
		pair = strings.TrimSpace(value)
		if !strings.Contains(pair, ":") {
			return "", secretErr(`basic-auth secret must be "user:password" or {"username": …, "password": …}`)
		}
	}
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(pair)), nil
}

// BearerHeader from the raw token or {"token": …}.
func BearerHeader(value string) (string, error) {
	token := strings.TrimSpace(value)
	if obj := maybeJSONObject(value); obj != nil {
		t, ok := obj["token"]
		if !ok {
			t = obj["bearer_token"]
		}
		s, ok := t.(string)
		if !ok {
			return "", secretErr(`bearer-token secret JSON needs a string "token" key`)
		}
		token = strings.TrimSpace(s)
	}
	if token == "" || strings.ContainsAny(token, "\r\n") {
		return "", secretErr("bearer-token secret is empty or contains line breaks")
	}
	return "Bearer " + token, nil
}
