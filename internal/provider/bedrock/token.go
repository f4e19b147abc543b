package bedrock

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Constants of the short-term Bedrock API key (bedrock-wire.md §3.1, §3.2;
// aws-bedrock-token-generator-python v1.1.0 uses the same).
const (
	// tokenPrefix starts every short-term Bedrock API key.
	tokenPrefix = "bedrock-api-key-"
	// tokenURL is the request that is presigned; it is never sent. The
	// host is global: the region is only in the credential scope.
	tokenURL = "https://bedrock.amazonaws.com/?Action=CallWithBearerToken"
	// tokenVersion is appended to the presigned URL before encoding.
	tokenVersion = "&Version=1"
	// maxTokenLifetime is the longest validity Bedrock accepts.
	maxTokenLifetime = 12 * time.Hour
	// emptyPayloadHash is the hex SHA-256 of "", the payload hash botocore
	// presigns the key with (not UNSIGNED-PAYLOAD).
	emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

// MintToken returns a short-term Bedrock API key ("bedrock-api-key-…") signed with creds for region,
// valid for expires (1s..12h) from now — the algorithm of bedrock-wire.md §3.2/§3.3 (SigV4 query presign of
// POST https://bedrock.amazonaws.com/?Action=CallWithBearerToken&X-Amz-Expires=N, service "bedrock",
// payload hash = SHA-256 of "", strip "https://", append "&Version=1", std base64, prefix).
//
// expires is truncated to whole seconds. The key is usable only in region
// and never outlives creds: callers with expiring credentials must pass at
// most their remaining lifetime (a [Minter] does). The returned error never
// contains a secret.
func MintToken(ctx context.Context, creds aws.Credentials, region string, expires time.Duration, now time.Time) (string, error) {
	if expires < time.Second || expires > maxTokenLifetime {
		return "", fmt.Errorf("mint Bedrock API key: lifetime %v is outside 1s..12h", expires)
	}
	if region == "" {
		return "", errors.New("mint Bedrock API key: no AWS region")
	}
	if creds.AccessKeyID == "" || creds.SecretAccessKey == "" {
		return "", errors.New("mint Bedrock API key: the AWS credentials have no access key ID or secret access key")
	}
	secs := strconv.FormatInt(int64(expires/time.Second), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL+"&X-Amz-Expires="+secs, nil)
	if err != nil {
		return "", fmt.Errorf("mint Bedrock API key: %w", err)
	}
	u, _, err := signer.PresignHTTP(ctx, creds, req, emptyPayloadHash, signingName, region, now)
	if err != nil {
		// The signer's errors do not carry credentials.
		return "", fmt.Errorf("mint Bedrock API key: presign: %w", err)
	}
	raw := strings.TrimPrefix(u, "https://") + tokenVersion
	return tokenPrefix + base64.StdEncoding.EncodeToString([]byte(raw)), nil
}

// TokenSource yields a bearer key for each request.
type TokenSource interface {
	// Token returns the key to send as "Authorization: Bearer <key>".
	Token(ctx context.Context) (string, error)
}

// Defaults of [Minter].
const (
	defaultTokenLifetime = maxTokenLifetime
	defaultRefreshBefore = 15 * time.Minute
	// refreshRetryInterval spaces refresh attempts while a failed refresh
	// leaves a still-valid key to serve.
	refreshRetryInterval = 10 * time.Second
	// expirySkew is how long before its expiry a key stops being served,
	// so that a request carrying it still arrives in time.
	expirySkew = 10 * time.Second
)

// Minter mints keys from a credentials provider and caches them: one key is reused until RefreshBefore
// (default 15 min) before it expires; the key's expiry is min(now+Lifetime (default 12h), creds.Expires when
// creds.CanExpire). Concurrent callers share one mint (no thundering herd, no lock held across the
// credentials call for longer than needed); a failed mint is returned as an error and retried on the next call;
// if a cached key is still valid when a refresh fails, keep serving it and log/return nothing fatal.
//
// Details: a key whose whole life is shorter than 2×RefreshBefore is
// refreshed after half of it. While one caller mints, the others get the
// current key when it is still valid and otherwise wait for that mint. After
// a failed refresh the valid key is served and the next attempt is made at
// most every 10 s; once no valid key is left every call tries again. When the
// credentials would cap the key's life at RefreshBefore or less and the
// provider has an Invalidate method (an [aws.CredentialsCache] does), the
// credentials are refreshed once before minting so that keys do not get
// shorter and shorter as the credentials approach their expiry.
//
// The zero value is not usable: set Credentials and Region. A Minter must
// not be copied after first use.
type Minter struct {
	// Credentials sign the keys; typically from [NewCredentialsProvider].
	Credentials aws.CredentialsProvider
	// Region is the AWS region the keys are valid in.
	Region string
	// Lifetime is the longest life of a key; 0 means 12 h, the maximum
	// (longer values are cut to 12 h).
	Lifetime time.Duration
	// RefreshBefore is how long before its expiry a key is replaced; 0
	// means 15 min.
	RefreshBefore time.Duration
	// Now is the clock; nil means time.Now. Tests set a fake one.
	Now func() time.Time
	// Logger receives a warning when a refresh fails while the current key
	// is still served; nil means no logging.
	Logger *slog.Logger

	mu        sync.Mutex
	key       string    // current key; "" before the first successful mint
	expires   time.Time // when key expires
	refreshAt time.Time // when to mint its successor
	retryAt   time.Time // no refresh attempt before this after a failure
	flight    *mintCall // the mint in progress, if any
}

// mintCall is one mint shared by the callers that wait for it.
type mintCall struct {
	done chan struct{} // closed when key or err is set
	key  string
	err  error
}

var _ TokenSource = (*Minter)(nil)

// Token returns a cached key or mints a new one; see [Minter].
func (m *Minter) Token(ctx context.Context) (string, error) {
	for {
		m.mu.Lock()
		now := m.now()
		if m.key != "" && now.Before(m.refreshAt) {
			key := m.key
			m.mu.Unlock()
			return key, nil
		}
		valid := m.key != "" && now.Before(m.expires.Add(-expirySkew))
		if valid && (m.flight != nil || now.Before(m.retryAt)) {
			// Someone is refreshing, or a refresh just failed: the current
			// key is still good.
			key := m.key
			m.mu.Unlock()
			return key, nil
		}
		if c := m.flight; c != nil {
			m.mu.Unlock()
			select {
			case <-c.done:
			case <-ctx.Done():
				return "", fmt.Errorf("mint Bedrock API key: %w", context.Cause(ctx))
			}
			if c.err == nil {
				return c.key, nil
			}
			if isContextErr(c.err) && ctx.Err() == nil {
				// The minting caller gave up; try again with our context.
				continue
			}
			return "", c.err
		}
		c := &mintCall{done: make(chan struct{})}
		m.flight = c
		m.mu.Unlock()

		key, expires, refreshAt, err := m.mintShared(ctx, c)

		m.mu.Lock()
		m.flight = nil
		now = m.now()
		if err == nil {
			m.key, m.expires, m.refreshAt, m.retryAt = key, expires, refreshAt, time.Time{}
			c.key = key
		} else {
			c.err = err
			if m.key != "" && now.Before(m.expires.Add(-expirySkew)) && !isContextErr(err) {
				m.retryAt = now.Add(refreshRetryInterval)
			}
		}
		old, oldValid := m.key, m.key != "" && now.Before(m.expires.Add(-expirySkew))
		oldExpires := m.expires
		close(c.done)
		m.mu.Unlock()

		if err == nil {
			return key, nil
		}
		if oldValid && ctx.Err() == nil {
			if m.Logger != nil {
				m.Logger.WarnContext(ctx, "bedrock: refreshing the API key failed; serving the current one until it expires",
					slog.Time("expires", oldExpires), slog.Any("error", err))
			}
			return old, nil
		}
		return "", err
	}
}

// errMintPanicked is what callers waiting for a mint get when it panicked.
var errMintPanicked = errors.New("mint Bedrock API key: the credentials provider panicked")

// mintShared runs mint for the callers of c. Should mint panic, the flight
// is ended with an error before the panic goes on, so that no caller waits
// for it forever.
func (m *Minter) mintShared(ctx context.Context, c *mintCall) (key string, expires, refreshAt time.Time, err error) {
	done := false
	defer func() {
		if !done {
			m.mu.Lock()
			m.flight = nil
			c.err = errMintPanicked
			close(c.done)
			m.mu.Unlock()
		}
	}()
	key, expires, refreshAt, err = m.mint(ctx)
	done = true
	return key, expires, refreshAt, err
}

// mint retrieves credentials and mints a key, returning it with its expiry
// and the time to replace it.
func (m *Minter) mint(ctx context.Context) (key string, expires, refreshAt time.Time, err error) {
	if m.Credentials == nil {
		return "", time.Time{}, time.Time{}, errors.New("mint Bedrock API key: no AWS credentials provider")
	}
	refreshBefore := m.RefreshBefore
	if refreshBefore <= 0 {
		refreshBefore = defaultRefreshBefore
	}
	lifetime := m.Lifetime
	if lifetime <= 0 || lifetime > maxTokenLifetime {
		lifetime = defaultTokenLifetime
	}
	creds, err := m.Credentials.Retrieve(ctx)
	if err != nil {
		return "", time.Time{}, time.Time{}, fmt.Errorf("mint Bedrock API key: %w", err)
	}
	now := m.now()
	if inv, ok := m.Credentials.(interface{ Invalidate() }); ok && creds.CanExpire && creds.Expires.Sub(now) <= refreshBefore {
		// The key would be short-lived only because the cached credentials
		// are about to expire: get fresh ones.
		inv.Invalidate()
		if creds, err = m.Credentials.Retrieve(ctx); err != nil {
			return "", time.Time{}, time.Time{}, fmt.Errorf("mint Bedrock API key: %w", err)
		}
		now = m.now()
	}
	life := lifetime
	if creds.CanExpire && creds.Expires.Sub(now) < life {
		life = creds.Expires.Sub(now)
	}
	life = life.Truncate(time.Second)
	if life < time.Second {
		return "", time.Time{}, time.Time{}, fmt.Errorf("mint Bedrock API key: the AWS credentials expire at %s, too soon to sign a key with them",
			creds.Expires.UTC().Format(time.RFC3339))
	}
	key, err = MintToken(ctx, creds, m.Region, life, now)
	if err != nil {
		return "", time.Time{}, time.Time{}, err
	}
	expires = now.Add(life)
	return key, expires, expires.Add(-min(refreshBefore, life/2)), nil
}

// now reads the Minter's clock.
func (m *Minter) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// isContextErr reports whether err comes from a canceled or expired context.
func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
