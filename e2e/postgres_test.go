package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// freshPostgresDB creates a database of its own for the test on the server
// dsn names, drops it when the test ends, and returns the POSTGRES_*
// variables that point a run config at it.
func freshPostgresDB(t *testing.T, dsn string) []string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("LLAMA_TEST_POSTGRES_DSN: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to LLAMA_TEST_POSTGRES_DSN: %v", err)
	}
	defer conn.Close(context.Background())
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "e2e_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Logf("drop database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	if _, err := strconv.Atoi(port); err != nil {
		t.Fatalf("LLAMA_TEST_POSTGRES_DSN port: %v", err)
	}
	password, _ := u.User.Password()
	return []string{
		"POSTGRES_HOST=" + u.Hostname(),
		"POSTGRES_PORT=" + port,
		"POSTGRES_DB=" + name,
		"POSTGRES_USER=" + u.User.Username(),
		"POSTGRES_PASSWORD=" + password,
	}
}
