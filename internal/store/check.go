package store

import (
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"unicode/utf8"
)

// What both backends accept and how they migrate, in one place, so that
// SQLite and PostgreSQL refuse the same input.

// CheckText rejects strings PostgreSQL's text cannot hold (invalid UTF-8,
// NUL), so that both backends accept the same keys and ids; nonEmpty also
// rejects "".
func CheckText(field, s string, nonEmpty bool) error {
	switch {
	case nonEmpty && s == "":
		return fmt.Errorf("%s is empty: %w", field, ErrInvalid)
	case !utf8.ValidString(s):
		return fmt.Errorf("%s is not valid UTF-8: %w", field, ErrInvalid)
	case strings.IndexByte(s, 0) >= 0:
		return fmt.Errorf("%s contains a NUL byte: %w", field, ErrInvalid)
	}
	return nil
}

// CheckRecord reports what makes r impossible to
func CheckRecord(r Record) error {
	for _, f := range []struct {
		name, value string
		nonEmpty    bool
	}{
		{"Kind", r.Kind, true}, {"ID", r.ID, true}, {"Parent", r.Parent, false},
		{"Model", r.Model, false}, {"Owner", r.Owner, false},
	} {
		if err := CheckText(f.name, f.value, f.nonEmpty); err != nil {
			return err
		}
	}
	return nil
}

// CheckQuery reports what makes q impossible to answer.
func CheckQuery(q ListQuery) error {
	if q.Limit < 1 {
		return fmt.Errorf("limit %d: must be at least 1: %w", q.Limit, ErrInvalid)
	}
	for _, f := range []struct {
		name, value string
		nonEmpty    bool
	}{
		{"Kind", q.Kind, true}, {"Parent", q.Parent, false}, {"Model", q.Model, false},
		{"Owner", q.Owner, false}, {"After", q.After, false}, {"Before", q.Before, false},
	} {
		if err := CheckText(f.name, f.value, f.nonEmpty); err != nil {
			return err
		}
	}
	return nil
}

// PrefixEnd returns the least string above every string that starts with
// prefix, for a range scan [prefix, end); ok is false when there is none
// (an empty prefix, or one of only U+10FFFF). prefix is valid UTF-8, whose
// byte order is code point order, so end is the prefix with its last code
// point below U+10FFFF incremented (skipping the surrogates, which UTF-8
// cannot hold) and what follows it dropped. end is valid UTF-8 too.
func PrefixEnd(prefix string) (end string, ok bool) {
	rs := []rune(prefix)
	for i := len(rs) - 1; i >= 0; i-- {
		if rs[i] == utf8.MaxRune {
			continue
		}
		rs[i]++
		if rs[i] == 0xD800 {
			rs[i] = 0xE000
		}
		return string(rs[:i+1]), true
	}
	return "", false
}

// Migration is one schema change of a backend, numbered from 1.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// LoadMigrations returns the migrations in dir of fsys in version order.
// Their names are NNNN_description.sql, numbered 1, 2, 3... without gaps.
func LoadMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("migration file %s: want NNNN_description.sql", e.Name())
		}
		if v != len(out)+1 {
			return nil, fmt.Errorf("migration file %s: version %d, want %d", e.Name(), v, len(out)+1)
		}
		b, err := fs.ReadFile(fsys, dir+"/"+e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: e.Name(), SQL: string(b)})
	}
	return out, nil
}
