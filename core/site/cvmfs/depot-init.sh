# depot-init.sh: use a depot-console depot in place from CernVM-FS (nothing is installed or copied).
#
#   source @SCRIPT@ CHANNEL                       bash, zsh, ksh: exports the depot env
#   DEPOT_INIT_CHANNEL=CHANNEL . @SCRIPT@         any POSIX sh (dash's '.' takes no arguments)
#   sh @SCRIPT@ --which CHANNEL                   print the image for this CPU and why
#   sh @SCRIPT@ --env CHANNEL                     print the exports instead of setting them
#
# It picks the most specific image of the channel's release that this CPU can run (the rule of
# depot-console's core.arch, with archspec @ARCHSPEC@'s CPU table below) from /proc/cpuinfo, or
# from $DEPOT_ARCH (an archspec name such as zen3 or x86_64_v3) when set. When no image fits it
# says why on stderr and returns 1. Other overrides: $DEPOT_MOUNT (the depot directory, default
# @DEPOT@), $DEPOT_WRITABLE (the per-user writable layer, default $TMPDIR/depot-<uid>) and
# $DEPOT_PROBE_CPUINFO (a cpuinfo file to read instead of /proc/cpuinfo).
#
# A Julia image also gets a `julia` wrapper in $DEPOT_WRITABLE/bin, put first on PATH: it runs the
# next julia on PATH (or $DEPOT_JULIA) and, when that is Julia >= 1.11, adds --pkgimages=existing, so
# the depot's package images are loaded and none is generated (unless the command line names its
# own --pkgimages). Older Julia is run unchanged.
#
# Written by depot-console ('console cvmfs init-script' prints it); do not edit in the repository.

_depot_init() {
    _depot_mode=source
    case "${1:-}" in
    --which) _depot_mode=which; shift ;;
    --env) _depot_mode=env; shift ;;
    esac
    _depot_ch=${DEPOT_INIT_CHANNEL:-${1:-}}
    if [ -z "$_depot_ch" ]; then
        echo "depot-init: which channel? source depot-init.sh CHANNEL (or set DEPOT_INIT_CHANNEL)" >&2
        return 2
    fi
    case "$_depot_ch" in
    [!a-z0-9]* | *[!a-z0-9._-]*)
        echo "depot-init: invalid channel name '$_depot_ch'" >&2
        return 2
        ;;
    esac
    _depot_root=${DEPOT_MOUNT:-@DEPOT@}
    if ! _depot_rel=$(cd -P "$_depot_root/channels/$_depot_ch" 2>/dev/null && pwd -P); then
        echo "depot-init: channel $_depot_ch is not published in $_depot_root" >&2
        return 1
    fi
    _depot_rel=$_depot_root/releases/${_depot_rel##*/}
    if [ ! -r "$_depot_rel/depot.env" ]; then
        echo "depot-init: $_depot_rel/depot.env is missing (release not fully published?)" >&2
        return 1
    fi
    if [ -z "${DEPOT_WRITABLE:-}" ]; then
        _depot_w=${TMPDIR:-/tmp}/depot-$(id -u)
    else
        _depot_w=$DEPOT_WRITABLE
    fi
    _depot_out=$(
        _DI_MODE=$_depot_mode _DI_CHANNEL=$_depot_ch _DI_REL=$_depot_rel _DI_W=$_depot_w \
            _DI_CPUINFO=${DEPOT_PROBE_CPUINFO:-/proc/cpuinfo} _DI_ARCH=${DEPOT_ARCH:-} \
            _DI_JULIA=$_DEPOT_JULIA _DI_PID=$$ LC_ALL=C awk "$_DEPOT_AWK" "$_depot_rel/depot.env"
    ) || return $?
    case $_depot_mode in
    source) eval "$_depot_out" ;;
    *) printf '%s\n' "$_depot_out" ;;
    esac
}

_DEPOT_AWK='
function T(name, fam, vendor, depth, nfeat, part, feats, ancs,   i, k, a) {
    NT++; N[NT] = name; ID[name] = NT; FAM[NT] = fam; V[NT] = vendor; D[NT] = depth + 0
    NF_[NT] = nfeat + 0; PART[NT] = part; FEATS[NT] = feats
    k = split(ancs, a, " "); for (i = 1; i <= k; i++) ANC[NT, a[i]] = 1
}
function trim(s) { sub(/^[ \t\r\n\f\v]+/, "", s); sub(/[ \t\r\n\f\v]+$/, "", s); return s }
function q(s) { gsub(/\047/, "\047\\\047\047", s); return "\047" s "\047" }
function repl(s, tok, val,   out, p) {
    out = ""
    while ((p = index(s, tok)) > 0) { out = out substr(s, 1, p - 1) val; s = substr(s, p + length(tok)) }
    return out s
}
function err(msg) { print "depot-init: " msg | "cat 1>&2"; close("cat 1>&2") }
function subset(t, have,   k, a, i) {
    k = split(FEATS[t], a, " ")
    for (i = 1; i <= k; i++) if (!((a[i]) in have)) return 0
    return 1
}
function anc(t, other) { return ((t, N[other]) in ANC) }
function can_run(c, i) { return c == i || anc(c, i) }
function better(a, b) { return D[a] > D[b] || (D[a] == D[b] && NF_[a] > NF_[b]) }
function prefer(a, b,   ga, gb) {
    ga = (V[a] == "generic"); gb = (V[b] == "generic")
    if (ga != gb) return !ga
    if (D[a] != D[b]) return D[a] > D[b]
    if (NF_[a] != NF_[b]) return NF_[a] > NF_[b]
    return N[a] < N[b]
}
function why_not(c, i,   k, a, j, miss, nmiss, shown, cf) {
    if (FAM[c] != FAM[i]) return "other family: " FAM[i] " image, " FAM[c] " CPU"
    k = split(FEATS[i], a, " "); nmiss = 0; miss = ""
    split("", CF); split(FEATS[c], cf, " "); for (j in cf) CF[cf[j]] = 1
    for (j = 1; j <= k; j++) if (!((a[j]) in CF)) { nmiss++; if (nmiss <= 4) miss = miss (nmiss > 1 ? ", " : "") a[j] }
    if (V[i] != "generic" && V[c] != "generic" && V[c] != V[i]) return "other vendor: " V[i] " image, " V[c] " CPU"
    if (nmiss) return "missing " miss (nmiss > 4 ? " and " (nmiss - 4) " more" : "")
    if (V[i] != "generic" && V[c] == "generic") return "vendor-specific image (" V[i] ") for a generic " N[c] " CPU"
    if (anc(i, c)) return "newer than " N[c]
    return "not in " N[c] "\047s lineage"
}
function classify(   line, p, key, val, seen, blk, fam, vendor, part, k, a, i, have, best, bg, n, cand, nc) {
    blk = 0
    while ((getline line < ENVIRON["_DI_CPUINFO"]) > 0) {
        p = index(line, ":")
        if (!p) { if (blk) break; continue }
        blk = 1; key = trim(substr(line, 1, p - 1)); val = trim(substr(line, p + 1))
        if (!(key in seen)) { seen[key] = 1; F[key] = val }
    }
    close(ENVIRON["_DI_CPUINFO"])
    if (F["CPU implementer"] != "" || F["Features"] != "") {
        fam = "aarch64"; vendor = F["CPU implementer"]; part = F["CPU part"]
        vendor = (vendor == "") ? "generic" : ((vendor in ARMV) ? ARMV[vendor] : vendor)
        k = split(F["Features"], a, " ")
    } else if (F["vendor_id"] != "" || F["flags"] != "") {
        fam = "x86_64"; vendor = F["vendor_id"]; part = ""
        if (vendor == "") vendor = "generic"
        k = split(F["flags"], a, " ")
    } else {
        err("cannot read this CPU from " ENVIRON["_DI_CPUINFO"] " (no vendor_id/flags or CPU implementer/Features); set DEPOT_ARCH")
        exit 2
    }
    for (i = 1; i <= k; i++) have[a[i]] = 1
    if ("ssse3" in have) have["sse3"] = 1   # archspec: ssse3 implies sse3 (Linux lists only pni)
    nc = 0
    for (n = 1; n <= NT; n++) {
        if (FAM[n] != fam) continue
        if (fam == "aarch64" && V[n] == "generic" && N[n] != "aarch64") continue
        if (V[n] != vendor && V[n] != "generic") continue
        if (!subset(n, have)) continue
        cand[++nc] = n
    }
    if (!nc) return fam
    bg = 0
    for (i = 1; i <= nc; i++) if (V[cand[i]] == "generic" && (!bg || better(cand[i], bg))) bg = cand[i]
    if (!bg) return fam
    if (part != "") {
        p = 0; for (i = 1; i <= nc; i++) if (PART[cand[i]] == part) p = 1
        if (p) { k = 0; for (i = 1; i <= nc; i++) if (PART[cand[i]] == part) cand[++k] = cand[i]; nc = k }
    }
    best = 0
    for (i = 1; i <= nc; i++) if (anc(cand[i], bg) && (!best || better(cand[i], best))) best = cand[i]
    return best ? N[best] : N[bg]
}
BEGIN {
    FS = "\t"
    @TABLE@
}
$1 == "images" { nimg = split($2, IMG, " "); next }
/^#/ || NF < 3 { next }
{ ENVN[$1]++; EK[$1, ENVN[$1]] = $2; EV[$1, ENVN[$1]] = $3 }
END {
    cpu = ENVIRON["_DI_ARCH"]
    if (cpu == "") cpu = classify()
    if (!(cpu in ID)) { err("DEPOT_ARCH=" cpu ": unknown micro-architecture (archspec names such as x86_64_v3, zen3, neoverse_v1)"); exit 2 }
    c = ID[cpu]; nrun = 0
    for (i = 1; i <= nimg; i++) {
        im = IMG[i]
        if (!(im in ID)) { REJ[im] = "unknown micro-architecture"; continue }
        if (can_run(c, ID[im])) RUN[++nrun] = ID[im]; else REJ[im] = why_not(c, ID[im])
    }
    best = 0
    for (i = 1; i <= nrun; i++) {
        maximal = 1
        for (j = 1; j <= nrun; j++) if (j != i && anc(RUN[j], RUN[i])) maximal = 0
        if (maximal && (!best || prefer(RUN[i], best))) best = RUN[i]
    }
    if (!best) {
        msg = "no image of channel " ENVIRON["_DI_CHANNEL"] " fits this CPU (" cpu "): "
        if (!nimg) msg = msg "the release has no images"
        for (i = 1; i <= nimg; i++) msg = msg (i > 1 ? "; " : "") "cannot run " IMG[i] ": " REJ[IMG[i]]
        err(msg)
        exit 1
    }
    img = N[best]
    if (ENVIRON["_DI_MODE"] == "which") {
        if (img == cpu) why = "exact match"; else why = (V[best] == "generic") ? "generic fallback" : "most specific compatible"
        print img "\t" cpu " runs " img ": " why
        exit 0
    }
    rel = ENVIRON["_DI_REL"]; dir = rel "/" img; w = ENVIRON["_DI_W"]; r = rel; sub(/.*\//, "", r)
    print "export DEPOT_CHANNEL=" q(ENVIRON["_DI_CHANNEL"])
    print "export DEPOT_RELEASE=" q("sha256:" r)
    print "export DEPOT_IMAGE=" q(img)
    print "export DEPOT_IMAGE_DIR=" q(dir)
    for (i = 1; i <= ENVN[img]; i++) {
        v = EV[img, i]
        v = repl(repl(v, "@IMAGE@", dir), "@WRITABLE@", w)
        if (EK[img, i] == "@MKDIR") {
            if (system("mkdir -p -m 700 " q(v))) { err("cannot create the writable layer " v); exit 1 }
        } else print "export " EK[img, i] "=" q(v)
        if (EK[img, i] == "JULIA_DEPOT_PATH") julia = 1
    }
    if (julia) {
        bin = w "/bin"; tmp = bin "/.julia." ENVIRON["_DI_PID"]
        if (system("mkdir -p -m 700 " q(bin))) { err("cannot create " bin " for the julia wrapper"); exit 1 }
        printf "%s", repl(ENVIRON["_DI_JULIA"], "@BIN@", q(bin)) > tmp
        if (close(tmp) || system("chmod 755 " q(tmp) " && mv -f " q(tmp) " " q(bin "/julia"))) {
            system("rm -f " q(tmp)); err("cannot write the julia wrapper " bin "/julia"); exit 1
        }
        k = split(ENVIRON["PATH"], a, ":"); p = bin
        if (a[1] != bin) {
            for (i = 1; i <= k; i++) if (a[i] != bin) p = p ":" a[i]
            print "export PATH=" q(p)
        }
    }
}
'

# The julia wrapper (see the top); @BIN@ is its own directory, which it skips on PATH.
_DEPOT_JULIA='#!/bin/sh
# julia wrapper written by depot-init.sh: the next julia on PATH (or $DEPOT_JULIA), with
# --pkgimages=existing when it is Julia >= 1.11 (package images loaded, none generated).
_self=@BIN@
_real=${DEPOT_JULIA:-}
if [ -z "$_real" ]; then
    set -f
    _ifs=$IFS
    IFS=:
    for _d in $PATH; do
        if [ -n "$_d" ] && [ "$_d" != "$_self" ] && [ -f "$_d/julia" ] && [ -x "$_d/julia" ]; then
            _real=$_d/julia
            break
        fi
    done
    IFS=$_ifs
    set +f
fi
if [ -z "$_real" ]; then
    echo "julia: no julia on PATH besides the depot wrapper in $_self (or set DEPOT_JULIA)" >&2
    exit 127
fi
for _a in "$@"; do
    case $_a in --pkgimages | --pkgimages=*) exec "$_real" "$@" ;; esac
done
_v=$("$_real" --version 2>/dev/null) || _v=
_v=${_v##* }
_maj=${_v%%.*}
_min=${_v#*.}
_min=${_min%%.*}
case $_maj.$_min in
*[!0-9.]* | .* | *.) ;;
*)
    if [ "$_maj" -gt 1 ] || { [ "$_maj" -eq 1 ] && [ "$_min" -ge 11 ]; }; then
        exec "$_real" --pkgimages=existing "$@"
    fi
    ;;
esac
exec "$_real" "$@"
'

_depot_init "$@"
_depot_rc=$?
unset _depot_mode _depot_ch _depot_root _depot_rel _depot_w _depot_out _DEPOT_AWK _DEPOT_JULIA
unset -f _depot_init 2>/dev/null
return $_depot_rc 2>/dev/null || exit $_depot_rc
