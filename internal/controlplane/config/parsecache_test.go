package config

import "testing"

// Only a changed file is parsed again; the others' objects are the very same.
func TestParseCacheReparsesChangedFilesOnly(t *testing.T) {
	a := File{Name: "a.yaml", Data: []byte("apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: a}\nspec: {address: 127.0.141.1}\n")}
	b := File{Name: "b.yaml", Data: []byte("apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: b}\nspec: {address: 127.0.141.2}\n")}
	var c ParseCache
	first, _ := c.ParseFiles([]File{a, b})
	b.Data = []byte("apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: b}\nspec: {address: 127.0.141.3}\n")
	second, diags := c.ParseFiles([]File{a, b})
	if len(first) != 2 || len(second) != 2 || len(diags) != 0 {
		t.Fatalf("parsed %d then %d objects (%v)", len(first), len(second), diags)
	}
	if first[0] != second[0] {
		t.Error("the unchanged file was parsed again")
	}
	if first[1] == second[1] {
		t.Error("the changed file was not parsed again")
	}
	// A duplicate across files is still rejected.
	dup := File{Name: "c.yaml", Data: a.Data}
	objs, diags := c.ParseFiles([]File{a, b, dup})
	if len(objs) != 2 || len(diags) != 1 || diags[0].Level != Error {
		t.Errorf("duplicate across files: %d objects, %v", len(objs), diags)
	}
}
