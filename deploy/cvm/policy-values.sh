#!/usr/bin/env bash
# Prints the [tdx] or [snp] section of a client policy.toml for a guest
# image, computed offline from the image's parts where that can be done.
#
#   policy-values.sh snp --ovmf OVMF.fd --kernel vmlinuz --initrd initrd.img \
#       --append "console=ttyS0" --vcpus 4 --vcpu-type EPYC-v4 [--guest-features 0x1]
#   policy-values.sh tdx MEASURING-COMMAND [ARGS...]
#
# SEV-SNP: the launch measurement is computed by sev-snp-measure
# (https://github.com/virtee/sev-snp-measure, `pip install sev-snp-measure`):
# it covers the firmware, the kernel, initrd and command line (measured
# direct boot), and the initial state of every vCPU, so the vCPU count and
# type must be those the VM is launched with.
#
# TDX: MRTD (the TD firmware) and RTMR1/RTMR2 (kernel, command line,
# initrd) depend on how the VMM loads the image, so they are computed by a
# tool written for that VMM, run here as MEASURING-COMMAND; its output must
# hold lines "MRTD: <hex>", "RTMR1: <hex>", ... (or the same names as JSON
# keys), as e.g. dstack-mr (github.com/kvinwang/dstack-mr) prints for a
# Dstack-style QEMU launch. RTMR0 depends on the host's ACPI tables and TD
# HOB and RTMR3 on what runs in the guest, so neither can be computed from
# the image alone: take them from a guest started on trusted hardware
# (`blindfold attest` prints them) and pin them only if the cloud or host
# configuration is fixed.
#
# Nothing here talks to a guest or a network. Exit status 2: the tool that
# computes the values is not installed (the message says which).
set -euo pipefail

usage() { sed -n '2,9p' "$0" >&2; exit 64; }
[ $# -ge 1 ] || usage
platform=$1; shift

need() {
	if ! command -v "$1" >/dev/null 2>&1; then
		echo "policy-values.sh: $1 is not installed: $2" >&2
		exit 2
	fi
}

case "$platform" in
snp)
	need sev-snp-measure "pip install sev-snp-measure (https://github.com/virtee/sev-snp-measure)"
	m=$(sev-snp-measure --mode snp --output-format hex "$@")
	m=$(printf '%s' "$m" | tr -d '[:space:]' | tr 'A-F' 'a-f')
	if ! [[ $m =~ ^[0-9a-f]{96}$ ]]; then
		echo "policy-values.sh: sev-snp-measure printed $m, not a 48-byte measurement" >&2
		exit 1
	fi
	cat <<TOML
[snp]
# Launch measurement of this image (sev-snp-measure $*).
measurement = ["$m"]
# Raise these to the platform TCB and firmware you accept (blindfold attest
# prints a running guest's).
min_tcb_bootloader = 0
min_tcb_tee = 0
min_tcb_snp = 0
min_tcb_microcode = 0
min_firmware = "1.51"
vmpl = 0
TOML
	;;
tdx)
	[ $# -ge 1 ] || usage
	need "$1" "give the command that computes the TD measurements for your VMM"
	out=$("$@")
	field() {
		printf '%s\n' "$out" | tr -d '",' | tr 'A-Z' 'a-z' |
			sed -n "s/^[[:space:]]*$1[[:space:]]*:[[:space:]]*\(0x\)\{0,1\}\([0-9a-f]\{96\}\)[[:space:]]*$/\2/p" | sed -n 1p
	}
	mrtd=$(field mrtd); rtmr1=$(field rtmr1); rtmr2=$(field rtmr2)
	if [ -z "$mrtd" ]; then
		echo "policy-values.sh: no mrtd in tdx-measure's output: $out" >&2
		exit 1
	fi
	cat <<TOML
[tdx]
# The TD firmware (platform side: the cloud's or host's TDVF build).
mrtd = ["$mrtd"]
# The image side: kernel and boot loader (rtmr1), command line and initrd
# (rtmr2).
${rtmr1:+rtmr1 = [\"$rtmr1\"]}
${rtmr2:+rtmr2 = [\"$rtmr2\"]}
# rtmr0 (ACPI tables, TD HOB) and rtmr3 cannot be computed from the image:
# pin them from a guest on trusted hardware if the host configuration is
# fixed. Raise min_tee_tcb_svn to the TDX module you accept.
TOML
	;;
*)
	usage
	;;
esac
