# Go module helpers shared by toolchain/build.sh and toolchain/knp.sh (sourced; each defines die and CACHE).

# moddownload <module@version> <field>: Dir / GoMod / Sum of a module from the
# module cache (downloading it through GOPROXY if needed).
moddownload() {
  local json out err
  err=$(mktemp)
  json=$(cd "$CACHE" && go mod download -json "$1" 2>"$err") || true
  out=$(python3 -c '
import json, sys
try:
    d = json.loads(sys.argv[1])
except ValueError:
    sys.exit(open(sys.argv[3]).read().strip() or "no output from go mod download")
if d.get("Error") or not d.get(sys.argv[2]):
    sys.exit(d.get("Error") or "no " + sys.argv[2])
print(d[sys.argv[2]])' "$json" "$2" "$err" 2>&1) || { rm -f "$err"; die "cannot download $1 through GOPROXY=$(go env GOPROXY): $out"; }
  rm -f "$err"
  printf '%s\n' "$out"
}

# modkey <go.mod>: its module/go/require/replace content, format-independent.
modkey() {
  go mod edit -json "$1" | python3 -c '
import json, sys
m = json.load(sys.stdin)
key = lambda e: json.dumps(e, sort_keys=True)
print(json.dumps({"module": m["Module"], "go": m.get("Go"),
                  "require": sorted(map(key, m.get("Require") or [])),
                  "replace": sorted(map(key, m.get("Replace") or []))}, sort_keys=True))'
}
