package bedrock

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/llama-stack-go/llama-stack-go/internal/provider/bedrock/bedrocktest"
)

// knownAnswer is the content of short-term-token-known-answer.txt.
type knownAnswer struct {
	accessKeyID, secretAccessKey, sessionToken string
	region                                     string
	signingTime                                time.Time
	// sections maps each "# vector N: …" comment to the line after it.
	sections map[string]string
}

// section returns the line after the comment that starts with prefix and
// contains substr.
func (ka *knownAnswer) section(t *testing.T, prefix, substr string) string {
	t.Helper()
	for k, v := range ka.sections {
		if strings.HasPrefix(k, prefix) && strings.Contains(k, substr) {
			return v
		}
	}
	t.Fatalf("fixture has no section %q…%q", prefix, substr)
	return ""
}

func loadKnownAnswer(t *testing.T) *knownAnswer {
	t.Helper()
	dir, err := bedrocktest.Fixtures()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "short-term-token-known-answer.txt"))
	if err != nil {
		t.Fatal(err)
	}
	ka := &knownAnswer{sections: map[string]string{}}
	find := func(re string) string {
		t.Helper()
		m := regexp.MustCompile(re).FindSubmatch(data)
		if m == nil {
			t.Fatalf("fixture: no match for %s", re)
		}
		return string(m[1])
	}
	ka.accessKeyID = find(`(?m)^# access_key_id=(\S+)`)
	ka.secretAccessKey = find(`(?m)^# secret_access_key=(\S+)`)
	ka.sessionToken = find(`(?m)^# session_token=(\S+)\s+->\s+vector 2`)
	ka.region = find(`region ([a-z]{2}(?:-[a-z]+)+-\d+)`)
	ka.signingTime, err = time.Parse(time.RFC3339, find(`signing time (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)`))
	if err != nil {
		t.Fatal(err)
	}
	var pending string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "# vector "):
			pending = strings.TrimPrefix(line, "# ")
		case line == "" || strings.HasPrefix(line, "#"):
			pending = ""
		case pending != "":
			ka.sections[pending] = line
			pending = ""
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return ka
}

// decodeToken returns the presigned URL inside a short-term key (without
// the "&Version=1" suffix) and its query.
func decodeToken(t *testing.T, tok string) (raw string, q url.Values) {
	t.Helper()
	b64, ok := strings.CutPrefix(tok, tokenPrefix)
	if !ok {
		t.Fatalf("token %.40q… lacks the prefix %q", tok, tokenPrefix)
	}
	b, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil {
		t.Fatalf("token is not standard base64: %v", err)
	}
	raw = string(b)
	if !strings.HasPrefix(raw, "bedrock.amazonaws.com/?") || !strings.HasSuffix(raw, tokenVersion) {
		t.Fatalf("decoded token %q: want bedrock.amazonaws.com/?…&Version=1", raw)
	}
	return raw, queryOf(t, raw)
}

func queryOf(t *testing.T, raw string) url.Values {
	t.Helper()
	u, err := url.Parse("https://" + raw)
	if err != nil {
		t.Fatal(err)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// tokenExpiry is when a minted key expires: X-Amz-Date + X-Amz-Expires.
func tokenExpiry(t *testing.T, tok string) (time.Time, time.Duration) {
	t.Helper()
	_, q := decodeToken(t, tok)
	date, err := time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
	if err != nil {
		t.Fatal(err)
	}
	secs, err := strconv.Atoi(q.Get("X-Amz-Expires"))
	if err != nil {
		t.Fatal(err)
	}
	d := time.Duration(secs) * time.Second
	return date.Add(d), d
}

func TestMintTokenKnownAnswer(t *testing.T) {
	ka := loadKnownAnswer(t)
	for _, tt := range []struct {
		vector       string
		sessionToken string
	}{
		{"vector 1", ""},
		{"vector 2", ka.sessionToken},
	} {
		t.Run(tt.vector, func(t *testing.T) {
			botoURL := ka.section(t, tt.vector+": presigned URL", "botocore order")
			botoToken := ka.section(t, tt.vector+": token", "")
			// The Go signer orders parameters alphabetically; with no
			// session token that is botocore's order too.
			goURL := botoURL
			if tt.sessionToken != "" {
				goURL = ka.section(t, tt.vector+": presigned URL", "aws-sdk-go-v2")
			}
			wantQ := queryOf(t, botoURL)
			expires, err := strconv.Atoi(wantQ.Get("X-Amz-Expires"))
			if err != nil {
				t.Fatal(err)
			}
			// The fixture is consistent with itself.
			if raw, _ := decodeToken(t, botoToken); raw != botoURL {
				t.Fatalf("fixture token decodes to %q, want the fixture URL %q", raw, botoURL)
			}

			creds := aws.Credentials{AccessKeyID: ka.accessKeyID, SecretAccessKey: ka.secretAccessKey, SessionToken: tt.sessionToken}
			tok, err := MintToken(t.Context(), creds, ka.region, time.Duration(expires)*time.Second, ka.signingTime)
			if err != nil {
				t.Fatal(err)
			}
			raw, gotQ := decodeToken(t, tok)
			if got, want := gotQ.Get("X-Amz-Signature"), wantQ.Get("X-Amz-Signature"); got != want {
				t.Errorf("signature = %s, want %s", got, want)
			}
			if !reflect.DeepEqual(gotQ, wantQ) {
				t.Errorf("parameters differ from botocore's:\n got %v\nwant %v", gotQ, wantQ)
			}
			if raw != goURL {
				t.Errorf("decoded token =\n %s\nwant (Go order)\n %s", raw, goURL)
			}
			if want := tokenPrefix + base64.StdEncoding.EncodeToString([]byte(goURL)); tok != want {
				t.Errorf("token =\n %s\nwant\n %s", tok, want)
			}
			if goURL == botoURL && tok != botoToken {
				t.Errorf("token differs from the fixture's:\n got %s\nwant %s", tok, botoToken)
			}
		})
	}
}

func TestMintTokenErrors(t *testing.T) {
	const secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	creds := aws.Credentials{AccessKeyID: "AKIAIOSFODNN7EXAMPLE", SecretAccessKey: secret, SessionToken: "session-token-secret"}
	now := time.Date(2025, 8, 14, 1, 13, 23, 0, time.UTC)
	for _, tt := range []struct {
		name    string
		creds   aws.Credentials
		region  string
		expires time.Duration
		want    string
	}{
		{"zero lifetime", creds, "us-west-2", 0, "outside 1s..12h"},
		{"under a second", creds, "us-west-2", 999 * time.Millisecond, "outside 1s..12h"},
		{"over 12h", creds, "us-west-2", 12*time.Hour + time.Second, "outside 1s..12h"},
		{"no region", creds, "", time.Hour, "no AWS region"},
		{"no secret", aws.Credentials{AccessKeyID: "AKIAIOSFODNN7EXAMPLE"}, "us-west-2", time.Hour, "no access key ID or secret access key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := MintToken(t.Context(), tt.creds, tt.region, tt.expires, now)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("MintToken = %q, %v; want an error containing %q", tok, err, tt.want)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "session-token-secret") {
				t.Errorf("error shows a secret: %v", err)
			}
		})
	}
	// Bounds are inclusive; the lifetime is cut to whole seconds.
	for _, d := range []time.Duration{time.Second, 1500 * time.Millisecond, 12 * time.Hour} {
		tok, err := MintToken(t.Context(), creds, "us-west-2", d, now)
		if err != nil {
			t.Fatalf("MintToken(%v): %v", d, err)
		}
		if _, got := tokenExpiry(t, tok); got != d.Truncate(time.Second) {
			t.Errorf("MintToken(%v): X-Amz-Expires = %v", d, got)
		}
	}
}

// minterClock is a settable clock.
type minterClock struct {
	mu sync.Mutex
	t  time.Time
}

func newMinterClock() *minterClock {
	return &minterClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *minterClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *minterClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// minterCreds is a credentials provider that behaves like a cache: it keeps
// the credentials it issued until they expire or Invalidate is called.
type minterCreds struct {
	now  func() time.Time
	life time.Duration // 0: credentials do not expire
	gate chan struct{} // when not nil, Retrieve waits for it to close

	mu          sync.Mutex
	err         error // returned while set
	calls       int   // Retrieve calls
	issued      int   // credentials issued
	invalidated int
	cur         aws.Credentials
}

var errCredsBroken = errors.New("credentials are broken")

func (f *minterCreds) Retrieve(ctx context.Context) (aws.Credentials, error) {
	f.mu.Lock()
	f.calls++
	gate := f.gate
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return aws.Credentials{}, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return aws.Credentials{}, f.err
	}
	now := f.now()
	if f.cur.AccessKeyID == "" || (f.cur.CanExpire && !now.Before(f.cur.Expires)) {
		f.issued++
		f.cur = aws.Credentials{
			AccessKeyID:     "ASIAFAKE" + strconv.Itoa(f.issued),
			SecretAccessKey: "fake-secret-" + strconv.Itoa(f.issued),
		}
		if f.life > 0 {
			f.cur.SessionToken = "fake-session-" + strconv.Itoa(f.issued)
			f.cur.CanExpire, f.cur.Expires = true, now.Add(f.life)
		}
	}
	return f.cur, nil
}

func (f *minterCreds) Invalidate() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.invalidated++
	f.cur = aws.Credentials{}
}

func (f *minterCreds) setErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *minterCreds) counts() (calls, issued, invalidated int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls, f.issued, f.invalidated
}

// noInvalidate hides the Invalidate method of a provider.
type noInvalidate struct{ p aws.CredentialsProvider }

func (n noInvalidate) Retrieve(ctx context.Context) (aws.Credentials, error) {
	return n.p.Retrieve(ctx)
}

func mustToken(t *testing.T, m *Minter) string {
	t.Helper()
	tok, err := m.Token(t.Context())
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	return tok
}

func TestMinterReusesUntilRefresh(t *testing.T) {
	clock := newMinterClock()
	creds := &minterCreds{now: clock.Now}
	m := &Minter{Credentials: creds, Region: "us-west-2", Now: clock.Now}

	t0 := clock.Now()
	tok := mustToken(t, m)
	if exp, life := tokenExpiry(t, tok); life != 12*time.Hour || !exp.Equal(t0.Add(12*time.Hour)) {
		t.Fatalf("first key expires at %v after %v; want 12h from %v", exp, life, t0)
	}
	if calls, _, _ := creds.counts(); calls != 1 {
		t.Fatalf("credentials retrieved %d times, want 1", calls)
	}
	// Within the window: same key, no credentials call.
	for _, step := range []time.Duration{time.Second, time.Hour, 10*time.Hour + 44*time.Minute + 58*time.Second} {
		clock.Advance(step)
		if got := mustToken(t, m); got != tok {
			t.Fatalf("at %v: a new key was minted", clock.Now().Sub(t0))
		}
	}
	if calls, _, _ := creds.counts(); calls != 1 {
		t.Fatalf("credentials retrieved %d times, want 1", calls)
	}
	// 12h - 15min reached: refresh.
	clock.Advance(time.Second)
	tok2 := mustToken(t, m)
	if tok2 == tok {
		t.Fatal("no new key at expiry - RefreshBefore")
	}
	if exp, _ := tokenExpiry(t, tok2); !exp.Equal(clock.Now().Add(12 * time.Hour)) {
		t.Errorf("second key expires at %v, want %v", exp, clock.Now().Add(12*time.Hour))
	}
	if calls, _, _ := creds.counts(); calls != 2 {
		t.Fatalf("credentials retrieved %d times, want 2", calls)
	}
}

func TestMinterLifetimeAndRefreshBefore(t *testing.T) {
	clock := newMinterClock()
	creds := &minterCreds{now: clock.Now}
	m := &Minter{Credentials: creds, Region: "eu-north-1", Now: clock.Now, Lifetime: time.Hour, RefreshBefore: 5 * time.Minute}
	tok := mustToken(t, m)
	if _, life := tokenExpiry(t, tok); life != time.Hour {
		t.Fatalf("key lifetime %v, want 1h", life)
	}
	if _, q := decodeToken(t, tok); !strings.Contains(q.Get("X-Amz-Credential"), "/eu-north-1/bedrock/aws4_request") {
		t.Errorf("credential scope %q, want region eu-north-1 and service bedrock", q.Get("X-Amz-Credential"))
	}
	clock.Advance(55*time.Minute - time.Second)
	if mustToken(t, m) != tok {
		t.Fatal("refreshed before expiry - RefreshBefore")
	}
	clock.Advance(time.Second)
	if mustToken(t, m) == tok {
		t.Fatal("not refreshed at expiry - RefreshBefore")
	}
}

func TestMinterCappedByExpiringCredentials(t *testing.T) {
	t.Run("credentials refreshed before minting", func(t *testing.T) {
		clock := newMinterClock()
		creds := &minterCreds{now: clock.Now, life: 30 * time.Minute}
		m := &Minter{Credentials: creds, Region: "us-west-2", Now: clock.Now}

		tok := mustToken(t, m)
		credsExpire := clock.Now().Add(30 * time.Minute)
		if exp, life := tokenExpiry(t, tok); life != 30*time.Minute || exp.After(credsExpire) {
			t.Fatalf("key expires at %v (lifetime %v), credentials at %v", exp, life, credsExpire)
		}
		if _, q := decodeToken(t, tok); q.Get("X-Amz-Security-Token") != "fake-session-1" {
			t.Errorf("X-Amz-Security-Token = %q", q.Get("X-Amz-Security-Token"))
		}
		clock.Advance(15*time.Minute - time.Second)
		if mustToken(t, m) != tok {
			t.Fatal("refreshed too early")
		}
		// 15 min before the key (and the credentials) expire: the cached
		// credentials are invalidated and fresh ones sign a full-length key.
		clock.Advance(time.Second)
		tok2 := mustToken(t, m)
		if tok2 == tok {
			t.Fatal("not refreshed 15 min before expiry")
		}
		if _, issued, invalidated := creds.counts(); issued != 2 || invalidated != 1 {
			t.Errorf("credentials issued %d, invalidated %d; want 2 and 1", issued, invalidated)
		}
		if _, life := tokenExpiry(t, tok2); life != 30*time.Minute {
			t.Errorf("second key lifetime %v, want 30m", life)
		}
	})
	t.Run("provider without Invalidate", func(t *testing.T) {
		clock := newMinterClock()
		fc := &minterCreds{now: clock.Now, life: 30 * time.Minute}
		m := &Minter{Credentials: noInvalidate{fc}, Region: "us-west-2", Now: clock.Now}
		credsExpire := clock.Now().Add(30 * time.Minute)
		tok := mustToken(t, m)
		clock.Advance(15 * time.Minute)
		tok2 := mustToken(t, m)
		if tok2 == tok {
			t.Fatal("not refreshed 15 min before expiry")
		}
		// Same credentials: the key can only live 15 more minutes and is
		// replaced after half of that.
		exp, life := tokenExpiry(t, tok2)
		if life != 15*time.Minute || exp.After(credsExpire) {
			t.Fatalf("second key expires at %v (lifetime %v), credentials at %v", exp, life, credsExpire)
		}
		clock.Advance(7*time.Minute + 29*time.Second)
		if mustToken(t, m) != tok2 {
			t.Fatal("short key refreshed before half its life")
		}
		clock.Advance(time.Second)
		if mustToken(t, m) == tok2 {
			t.Fatal("short key not refreshed after half its life")
		}
	})
	t.Run("credentials already expiring", func(t *testing.T) {
		clock := newMinterClock()
		creds := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "ASIA", SecretAccessKey: "s", CanExpire: true, Expires: clock.Now().Add(500 * time.Millisecond)}, nil
		})
		m := &Minter{Credentials: creds, Region: "us-west-2", Now: clock.Now}
		if _, err := m.Token(t.Context()); err == nil || !strings.Contains(err.Error(), "too soon") {
			t.Fatalf("Token error = %v, want one about expiring credentials", err)
		}
	})
}

func TestMinterConcurrentCallersMintOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		creds := &minterCreds{now: time.Now, gate: gate}
		m := &Minter{Credentials: creds, Region: "us-west-2"}

		const n = 50
		toks := make([]string, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { toks[i], errs[i] = m.Token(t.Context()) })
		}
		synctest.Wait() // one caller waits in Retrieve, the others for it
		if calls, _, _ := creds.counts(); calls != 1 {
			t.Fatalf("%d concurrent credentials calls, want 1", calls)
		}
		close(gate)
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("caller %d: %v", i, errs[i])
			}
			if toks[i] != toks[0] {
				t.Fatalf("caller %d got another key", i)
			}
		}
		if calls, _, _ := creds.counts(); calls != 1 {
			t.Fatalf("credentials retrieved %d times, want 1", calls)
		}

		// While one caller refreshes, the others get the still-valid key
		// without waiting.
		gate2 := make(chan struct{})
		creds.mu.Lock()
		creds.gate = gate2
		creds.mu.Unlock()
		time.Sleep(12*time.Hour - 15*time.Minute)
		var refreshed string
		wg.Go(func() { refreshed, _ = m.Token(t.Context()) })
		synctest.Wait()
		for range 10 {
			if tok, err := m.Token(t.Context()); err != nil || tok != toks[0] {
				t.Fatalf("during a refresh: Token = %.30q…, %v; want the current key", tok, err)
			}
		}
		close(gate2)
		wg.Wait()
		if refreshed == "" || refreshed == toks[0] {
			t.Fatal("the refreshing caller did not get a new key")
		}
	})
}

func TestMinterWaiterRetriesWhenMintingCallerGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		creds := &minterCreds{now: time.Now, gate: gate}
		m := &Minter{Credentials: creds, Region: "us-west-2"}

		ctxA, cancelA := context.WithCancel(t.Context())
		var errA, errB error
		var tokB string
		var wg sync.WaitGroup
		wg.Go(func() { _, errA = m.Token(ctxA) })
		synctest.Wait() // A mints
		wg.Go(func() { tokB, errB = m.Token(t.Context()) })
		synctest.Wait() // B waits for A
		cancelA()
		synctest.Wait() // A gave up; B mints
		close(gate)
		wg.Wait()
		if !errors.Is(errA, context.Canceled) {
			t.Errorf("canceled caller: %v, want context.Canceled", errA)
		}
		if errB != nil || tokB == "" {
			t.Errorf("waiting caller: %q, %v; want a key", tokB, errB)
		}
	})
}

func TestMinterRetriesFailedMint(t *testing.T) {
	clock := newMinterClock()
	creds := &minterCreds{now: clock.Now}
	creds.setErr(errCredsBroken)
	m := &Minter{Credentials: creds, Region: "us-west-2", Now: clock.Now}

	_, err := m.Token(t.Context())
	if !errors.Is(err, errCredsBroken) || !strings.HasPrefix(err.Error(), "mint Bedrock API key: ") {
		t.Fatalf("Token error = %v, want errCredsBroken with context", err)
	}
	// The next call tries again at once.
	_, err = m.Token(t.Context())
	if !errors.Is(err, errCredsBroken) {
		t.Fatalf("second Token error = %v, want errCredsBroken", err)
	}
	if calls, _, _ := creds.counts(); calls != 2 {
		t.Fatalf("credentials retrieved %d times, want 2", calls)
	}
	creds.setErr(nil)
	mustToken(t, m)
	if calls, _, _ := creds.counts(); calls != 3 {
		t.Fatalf("credentials retrieved %d times, want 3", calls)
	}
}

func TestMinterServesValidKeyWhenRefreshFails(t *testing.T) {
	clock := newMinterClock()
	creds := &minterCreds{now: clock.Now}
	var logs bytes.Buffer
	m := &Minter{
		Credentials: creds, Region: "us-west-2", Now: clock.Now,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	}
	tok := mustToken(t, m)
	exp, _ := tokenExpiry(t, tok)

	creds.setErr(errCredsBroken)
	clock.Advance(12*time.Hour - 15*time.Minute)
	if got := mustToken(t, m); got != tok {
		t.Fatal("a failed refresh did not keep the current key")
	}
	if calls, _, _ := creds.counts(); calls != 2 {
		t.Fatalf("credentials retrieved %d times, want 2", calls)
	}
	if !strings.Contains(logs.String(), "refreshing the API key failed") || !strings.Contains(logs.String(), errCredsBroken.Error()) {
		t.Errorf("log = %q, want a warning with the cause", logs.String())
	}
	if _, q := decodeToken(t, tok); strings.Contains(logs.String(), tok) || strings.Contains(logs.String(), q.Get("X-Amz-Signature")) {
		t.Error("the log shows the key")
	}
	// Attempts are spaced while the current key is served.
	clock.Advance(refreshRetryInterval - time.Second)
	if got := mustToken(t, m); got != tok {
		t.Fatal("current key not served")
	}
	if calls, _, _ := creds.counts(); calls != 2 {
		t.Fatalf("credentials retrieved %d times within the retry interval, want 2", calls)
	}
	clock.Advance(time.Second)
	if got := mustToken(t, m); got != tok {
		t.Fatal("current key not served")
	}
	if calls, _, _ := creds.counts(); calls != 3 {
		t.Fatalf("credentials retrieved %d times, want 3", calls)
	}
	// Once the key is about to expire the error surfaces.
	clock.Advance(exp.Sub(clock.Now()) - expirySkew)
	if _, err := m.Token(t.Context()); !errors.Is(err, errCredsBroken) {
		t.Fatalf("Token at expiry = %v, want errCredsBroken", err)
	}
	// Recovery mints a new key.
	creds.setErr(nil)
	if got := mustToken(t, m); got == tok {
		t.Fatal("no new key after recovery")
	}
}

func TestMinterRecoversBeforeExpiry(t *testing.T) {
	clock := newMinterClock()
	creds := &minterCreds{now: clock.Now}
	m := &Minter{Credentials: creds, Region: "us-west-2", Now: clock.Now}
	tok := mustToken(t, m)
	creds.setErr(errCredsBroken)
	clock.Advance(12*time.Hour - 10*time.Minute)
	if mustToken(t, m) != tok {
		t.Fatal("current key not served")
	}
	creds.setErr(nil)
	clock.Advance(refreshRetryInterval)
	if mustToken(t, m) == tok {
		t.Fatal("no new key once the credentials work again")
	}
}

func TestMinterWithoutCredentials(t *testing.T) {
	m := &Minter{Region: "us-west-2"}
	if _, err := m.Token(t.Context()); err == nil || !strings.Contains(err.Error(), "no AWS credentials provider") {
		t.Fatalf("Token error = %v", err)
	}
}

func TestMinterCanceledWaiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		creds := &minterCreds{now: time.Now, gate: gate}
		m := &Minter{Credentials: creds, Region: "us-west-2"}
		var wg sync.WaitGroup
		wg.Go(func() { _, _ = m.Token(t.Context()) })
		synctest.Wait()
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if _, err := m.Token(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("waiter past its deadline: %v, want DeadlineExceeded", err)
		}
		close(gate)
		wg.Wait()
	})
}

func TestMinterPanickingProviderReleasesWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		var calls int
		var mu sync.Mutex
		creds := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			mu.Lock()
			calls++
			n := calls
			mu.Unlock()
			if n == 1 {
				<-gate
				panic("provider bug")
			}
			return aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "s"}, nil
		})
		m := &Minter{Credentials: creds, Region: "us-west-2"}
		var wg sync.WaitGroup
		var recovered any
		wg.Go(func() {
			defer func() { recovered = recover() }()
			_, _ = m.Token(t.Context())
		})
		synctest.Wait()
		var waitErr error
		wg.Go(func() { _, waitErr = m.Token(t.Context()) })
		synctest.Wait()
		close(gate)
		wg.Wait()
		if recovered == nil {
			t.Error("the panic was swallowed")
		}
		if !errors.Is(waitErr, errMintPanicked) {
			t.Errorf("waiter: %v, want errMintPanicked", waitErr)
		}
		if _, err := m.Token(t.Context()); err != nil {
			t.Errorf("Token after the panic: %v", err)
		}
	})
}
