#!/usr/bin/env bash
# Builds the firmware image and prints what it costs: the ELF's section sizes (flash =
# .text + .rodata + .data, RAM = .data + .bss), then every plimsoll static with its size
# and the section it lives in, read from the image's symbol table (`d` = .data, `b` =
# .bss). Needs the thumbv7em-none-eabihf target, and `rustup component add llvm-tools`
# for llvm-size and llvm-nm (an llvm-size/llvm-nm on PATH or GNU size/nm also do).
set -euo pipefail
cd "$(dirname "$0")"

cargo build --release --locked
elf=target/thumbv7em-none-eabihf/release/plimsoll-firmware

# The first of: the rustup component's tool, the same tool on PATH, the GNU one.
find_tool() {
    local llvm=$1 gnu=$2 found
    found=$(compgen -G "$(rustc --print sysroot)/lib/rustlib/*/bin/$llvm" | head -n 1 || true)
    if [ -n "$found" ]; then
        echo "$found"
    elif command -v "$llvm" >/dev/null; then
        command -v "$llvm"
    elif command -v "$gnu" >/dev/null; then
        command -v "$gnu"
    else
        echo "neither $llvm (rustup component add llvm-tools) nor $gnu found" >&2
        return 1
    fi
}
size=$(find_tool llvm-size size)
nm=$(find_tool llvm-nm nm)

echo "== sections ($(basename "$size") -A)"
"$size" -A "$elf" | awk '$1 ~ /^\.(vector_table|text|rodata|data|bss|uninit)$/ { print; s[$1] = $2 }
    END {
        flash = s[".vector_table"] + s[".text"] + s[".rodata"] + s[".data"]
        ram = s[".data"] + s[".bss"] + s[".uninit"]
        printf "flash (vector_table + text + rodata + data): %d B\n", flash
        printf "static RAM (data + bss + uninit): %d B; the stack has the rest of the 256 KiB\n", ram
    }'

echo
echo "== totals ($(basename "$size") -B: its text includes .rodata, its bss .uninit)"
"$size" -B "$elf"

echo
echo "== plimsoll statics and task storage, in address order ($(basename "$nm") -S)"
total=0
while read -r _ hex kind name; do
    case $kind in
        d | D) section=.data ;;
        *) section=.bss ;;
    esac
    printf '%-6s %6d B  %s\n' "$section" $((16#$hex)) "${name%::h*}"
    total=$((total + 16#$hex))
done < <("$nm" -S -C -n "$elf" | grep -E '^[0-9a-f]+ [0-9a-f]+ [bBdD] plimsoll_firmware::')
printf 'total  %6d B\n' "$total"
