# Sourced by ci/test and ci/demo: install the Debian packages that are
# missing, non-interactively (CI has no terminal). Only what is missing, so
# a machine that has everything is not touched.
pxs_install_deps() {
    local missing=()
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "ci: missing packages: ${missing[*]}" >&2
        echo "ci: run as root, or install them first: apt-get install ${missing[*]}" >&2
        return 1
    fi
    echo "ci: installing missing packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# What building and testing pxs needs (optional parts included, so the
# configure summary on CI shows every connector's dependency found).
PXS_BUILD_PKGS=(gcc libc6-dev meson ninja-build pkg-config)
PXS_TEST_PKGS=(libcriterion-dev clang libclang-rt-14-dev libucx-dev ucx-utils libfabric-dev
               libfabric-bin libopenmpi-dev openmpi-bin libhwloc-dev hwloc iproute2 gnuplot-nox)
