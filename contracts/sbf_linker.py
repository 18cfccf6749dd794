"""The project's SBF linker: relocatable BPF objects from clang-19 -> a program the Solana loader accepts.

Owns: turning `clang-19 -target bpf -mcpu=v2 -c` objects into an SBF v0 shared object
(ELF64 LE, e_machine 247, ET_DYN, e_flags 0) that passes a real deploy through the upgradeable
BPF loader. Standard library only.

Why a linker of our own: Debian's ld.lld cannot emit this format (see notes/sbf-toolchain.md).
What it does, and the reasons:
- Executable sections are merged into one `.text`, read-only data into one `.rodata`. Every output
  section's virtual address equals its file offset, because the loader's deploy-time check demands
  it for SBF v0; the VM then sees the file at `MM_PROGRAM_START + offset`.
- Data addresses (`R_BPF_64_64`, the `lddw` pair) and pointers inside `.rodata` (`R_BPF_64_ABS64`)
  are resolved statically to `MM_PROGRAM_START + offset`: no dynamic relocation is needed for them.
- Calls to functions defined in the program become relative calls (imm = target/8 - pc - 1).
- Calls to undefined names must be syscalls: they stay `call -1` with an `R_BPF_64_32` dynamic
  relocation against a `.dynsym` entry; the loader resolves them by name. Names outside the known
  syscall set are refused here, so a typo fails at build time instead of at deploy time.
- What SBF v0 cannot load is refused with a clear `LinkError`: writable `.data`/`.bss`/common
  symbols (no mutable globals), `R_BPF_64_ABS32` (VM addresses exceed 4 GiB), unknown relocation
  types, duplicate or missing definitions, and a missing `entrypoint`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

MM_PROGRAM_START = 0x1_0000_0000
INSN_SIZE = 8

EM_BPF = 247
ET_REL = 1
ET_DYN = 3

SHT_NULL = 0
SHT_PROGBITS = 1
SHT_SYMTAB = 2
SHT_STRTAB = 3
SHT_RELA = 4
SHT_NOBITS = 8
SHT_REL = 9
SHT_DYNAMIC = 6
SHT_DYNSYM = 11

SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4

SHN_UNDEF = 0
SHN_ABS = 0xFFF1
SHN_COMMON = 0xFFF2

STB_LOCAL = 0
STB_GLOBAL = 1
STB_WEAK = 2
STT_NOTYPE = 0
STT_OBJECT = 1
STT_FUNC = 2
STT_SECTION = 3

PT_LOAD = 1
PT_DYNAMIC = 2
PF_X = 1
PF_R = 4

DT_NULL = 0
DT_STRTAB = 5
DT_SYMTAB = 6
DT_STRSZ = 10
DT_SYMENT = 11
DT_REL = 17
DT_RELSZ = 18
DT_RELENT = 19

R_BPF_NONE = 0
R_BPF_64_64 = 1
R_BPF_64_ABS64 = 2
R_BPF_64_ABS32 = 3
R_BPF_64_NODYLD32 = 4
R_BPF_64_32 = 10

OPC_CALL_IMM = 0x85
OPC_LDDW = 0x18

# The syscalls the runtime registers for SBF v0 programs (solana-bpf-loader-program's registry).
KNOWN_SYSCALLS: frozenset[str] = frozenset(
    {
        "abort",
        "sol_panic_",
        "sol_log_",
        "sol_log_64_",
        "sol_log_compute_units_",
        "sol_log_pubkey",
        "sol_log_data",
        "sol_create_program_address",
        "sol_try_find_program_address",
        "sol_sha256",
        "sol_keccak256",
        "sol_blake3",
        "sol_secp256k1_recover",
        "sol_get_clock_sysvar",
        "sol_get_epoch_schedule_sysvar",
        "sol_get_rent_sysvar",
        "sol_get_fees_sysvar",
        "sol_get_epoch_rewards_sysvar",
        "sol_get_last_restart_slot",
        "sol_get_sysvar",
        "sol_memcpy_",
        "sol_memmove_",
        "sol_memcmp_",
        "sol_memset_",
        "sol_invoke_signed_c",
        "sol_invoke_signed_rust",
        "sol_set_return_data",
        "sol_get_return_data",
        "sol_get_stack_height",
        "sol_get_processed_sibling_instruction",
        "sol_remaining_compute_units",
        "sol_curve_validate_point",
        "sol_curve_group_op",
        "sol_curve_multiscalar_mul",
        "sol_alt_bn128_group_op",
        "sol_alt_bn128_compression",
        "sol_poseidon",
        "sol_big_mod_exp",
        "sol_get_epoch_stake",
    }
)

_IGNORED_RELOCS = {R_BPF_NONE, R_BPF_64_NODYLD32}


class LinkError(Exception):
    """The objects cannot be linked into a program SBF v0 can load; the message says why."""


@dataclass
class _Section:
    index: int
    name: str
    type: int
    flags: int
    data: bytes
    size: int
    align: int
    link: int
    info: int


@dataclass
class _Symbol:
    name: str
    value: int
    size: int
    type: int
    bind: int
    shndx: int


@dataclass
class _Reloc:
    offset: int
    sym: int
    type: int


@dataclass
class _Object:
    path: str
    sections: list[_Section]
    symbols: list[_Symbol]
    relocs: dict[int, list[_Reloc]] = field(default_factory=dict)


def _cstr(table: bytes, offset: int) -> str:
    end = table.index(b"\0", offset)
    return table[offset:end].decode()


def parse_object(data: bytes, path: str = "<object>") -> _Object:
    """Read a relocatable BPF ELF object (what `clang-19 -target bpf -c` writes)."""
    if len(data) < 64 or data[:4] != b"\x7fELF":
        raise LinkError(f"{path}: not an ELF file")
    if data[4] != 2 or data[5] != 1:
        raise LinkError(f"{path}: not a 64-bit little-endian ELF")
    (e_type, e_machine) = struct.unpack_from("<HH", data, 16)
    if e_machine != EM_BPF:
        raise LinkError(f"{path}: e_machine {e_machine} is not BPF ({EM_BPF})")
    if e_type != ET_REL:
        raise LinkError(f"{path}: not a relocatable object (e_type {e_type})")
    (e_shoff,) = struct.unpack_from("<Q", data, 40)
    e_shentsize, e_shnum, e_shstrndx = struct.unpack_from("<HHH", data, 58)
    raw = []
    for i in range(e_shnum):
        raw.append(struct.unpack_from("<IIQQQQIIQQ", data, e_shoff + i * e_shentsize))
    shstr_off, shstr_size = raw[e_shstrndx][4], raw[e_shstrndx][5]
    shstr = data[shstr_off : shstr_off + shstr_size]
    sections = []
    for i, (name, typ, flags, _addr, off, size, link, info, align, _ent) in enumerate(raw):
        body = b"" if typ == SHT_NOBITS else data[off : off + size]
        sections.append(_Section(i, _cstr(shstr, name), typ, flags, body, size, max(align, 1), link, info))
    symbols: list[_Symbol] = []
    symtabs = [s for s in sections if s.type == SHT_SYMTAB]
    if symtabs:
        symtab = symtabs[0]
        strtab = sections[symtab.link].data
        for off in range(0, len(symtab.data), 24):
            st_name, st_info, _other, st_shndx, st_value, st_size = struct.unpack_from(
                "<IBBHQQ", symtab.data, off
            )
            symbols.append(
                _Symbol(_cstr(strtab, st_name), st_value, st_size, st_info & 0xF, st_info >> 4, st_shndx)
            )
    obj = _Object(path, sections, symbols)
    for s in sections:
        if s.type == SHT_RELA:
            raise LinkError(f"{path}: RELA relocations in {s.name} are not produced by the BPF back end")
        if s.type == SHT_REL:
            entries = []
            for off in range(0, len(s.data), 16):
                r_offset, r_info = struct.unpack_from("<QQ", s.data, off)
                entries.append(_Reloc(r_offset, r_info >> 32, r_info & 0xFFFFFFFF))
            obj.relocs[s.info] = entries
    return obj


def _align(value: int, alignment: int) -> int:
    return (value + alignment - 1) // alignment * alignment


def _kind(section: _Section, path: str) -> str | None:
    """Which output section an input section goes to: 'text', 'rodata', or None (not loaded)."""
    if not section.flags & SHF_ALLOC:
        return None
    if section.size == 0:
        return None
    if section.flags & SHF_WRITE or section.type == SHT_NOBITS:
        raise LinkError(
            f"{path}: section {section.name} is writable data ({section.size} bytes); SBF v0 has no "
            "mutable globals -- make it `static const` or move it to the stack"
        )
    if section.flags & SHF_EXECINSTR:
        return "text"
    if section.type == SHT_PROGBITS:
        return "rodata"
    raise LinkError(f"{path}: cannot place allocated section {section.name} (type {section.type})")


@dataclass(frozen=True)
class LinkedProgram:
    """The linked program's bytes and what the linker decided, for tests and reports."""

    elf: bytes
    entrypoint: int
    text_size: int
    rodata_size: int
    syscalls: tuple[str, ...]


def link(
    objects: Sequence[bytes],
    names: Sequence[str] | None = None,
    entry: str = "entrypoint",
    allowed_syscalls: Iterable[str] = KNOWN_SYSCALLS,
) -> LinkedProgram:
    """Link relocatable BPF objects into one SBF v0 program."""
    labels = list(names) if names is not None else [f"object {i}" for i in range(len(objects))]
    objs = [parse_object(data, label) for data, label in zip(objects, labels, strict=True)]
    allowed = frozenset(allowed_syscalls)

    # Layout: text then rodata, each input section at its own alignment; addresses are file offsets.
    placement: dict[tuple[int, int], tuple[str, int]] = {}  # (obj, shndx) -> (kind, offset in kind)
    text = bytearray()
    rodata = bytearray()
    for oi, obj in enumerate(objs):
        for sec in obj.sections:
            kind = _kind(sec, obj.path)
            if kind is None:
                continue
            buf = text if kind == "text" else rodata
            buf.extend(b"\0" * (_align(len(buf), max(sec.align, 8 if kind == "text" else 1)) - len(buf)))
            placement[(oi, sec.index)] = (kind, len(buf))
            buf.extend(sec.data)

    # Global symbols across objects.
    defined: dict[str, tuple[int, _Symbol]] = {}
    for oi, obj in enumerate(objs):
        for sym in obj.symbols:
            if sym.shndx == SHN_COMMON:
                raise LinkError(f"{obj.path}: common symbol {sym.name} is a mutable global; SBF v0 has none")
            if sym.bind in (STB_GLOBAL, STB_WEAK) and sym.shndx != SHN_UNDEF:
                if sym.name in defined and sym.bind == STB_GLOBAL and defined[sym.name][1].bind == STB_GLOBAL:
                    raise LinkError(f"duplicate definition of {sym.name} in {obj.path}")
                if sym.name not in defined or defined[sym.name][1].bind == STB_WEAK:
                    defined[sym.name] = (oi, sym)

    ehdr_size, phdr_size = 64, 56
    n_phdrs = 4 if rodata else 3
    text_off = _align(ehdr_size + n_phdrs * phdr_size, 8)
    rodata_off = _align(text_off + len(text), 8)

    def base(kind: str) -> int:
        return text_off if kind == "text" else rodata_off

    def symbol_address(oi: int, sym: _Symbol, where: str) -> int | None:
        """File offset of a symbol, or None when it is undefined everywhere (a syscall)."""
        if sym.shndx == SHN_UNDEF:
            if sym.name in defined:
                doi, dsym = defined[sym.name]
                return symbol_address(doi, dsym, where)
            return None
        if sym.shndx == SHN_ABS:
            raise LinkError(f"{where}: absolute symbol {sym.name} cannot be placed in the program")
        key = (oi, sym.shndx)
        if key not in placement:
            sec = objs[oi].sections[sym.shndx]
            raise LinkError(
                f"{where}: symbol {sym.name or sec.name} is in section {sec.name}, which is not loaded"
            )
        kind, off = placement[key]
        return base(kind) + off + (0 if sym.type == STT_SECTION else sym.value)

    syscall_sites: list[tuple[int, str]] = []  # (file offset of the call, name)
    for oi, obj in enumerate(objs):
        for target_idx, relocs in obj.relocs.items():
            target = obj.sections[target_idx]
            if (oi, target_idx) not in placement:
                continue  # relocations of debug/BTF sections: not loaded
            kind, sec_off = placement[(oi, target_idx)]
            buf = text if kind == "text" else rodata
            for r in relocs:
                if r.type in _IGNORED_RELOCS:
                    continue
                sym = obj.symbols[r.sym]
                where = f"{obj.path}:{target.name}+{r.offset:#x}"
                at = sec_off + r.offset  # offset inside buf
                file_at = base(kind) + at
                if r.type == R_BPF_64_ABS32:
                    raise LinkError(
                        f"{where}: R_BPF_64_ABS32 against {sym.name or 'a section'} cannot be "
                        "represented: program addresses exceed 4 GiB in the SBF VM"
                    )
                if r.type == R_BPF_64_64:
                    if kind != "text" or buf[at] != OPC_LDDW:
                        raise LinkError(f"{where}: R_BPF_64_64 must point at an lddw instruction")
                    (lo,) = struct.unpack_from("<I", buf, at + 4)
                    (hi,) = struct.unpack_from("<I", buf, at + 12)
                    addr = symbol_address(oi, sym, where)
                    if addr is None:
                        raise LinkError(f"{where}: undefined data symbol {sym.name}")
                    value = MM_PROGRAM_START + addr + (lo | hi << 32)
                    struct.pack_into("<I", buf, at + 4, value & 0xFFFFFFFF)
                    struct.pack_into("<I", buf, at + 12, value >> 32)
                elif r.type == R_BPF_64_ABS64:
                    (addend,) = struct.unpack_from("<Q", buf, at)
                    addr = symbol_address(oi, sym, where)
                    if addr is None:
                        raise LinkError(f"{where}: undefined data symbol {sym.name}")
                    struct.pack_into("<Q", buf, at, MM_PROGRAM_START + addr + addend)
                elif r.type == R_BPF_64_32:
                    if kind != "text" or buf[at] != OPC_CALL_IMM:
                        raise LinkError(f"{where}: R_BPF_64_32 must point at a call instruction")
                    addr = symbol_address(oi, sym, where)
                    if addr is None:
                        if sym.name not in allowed:
                            raise LinkError(
                                f"{where}: undefined symbol {sym.name!r} is not a Solana syscall "
                                "(the loader would refuse it at deploy: Unresolved symbol)"
                            )
                        struct.pack_into("<i", buf, at + 4, -1)
                        syscall_sites.append((file_at, sym.name))
                    else:
                        if sym.type == STT_SECTION:
                            (imm,) = struct.unpack_from("<i", buf, at + 4)
                            addr += (imm + 1) * INSN_SIZE
                        rel = (addr - file_at) // INSN_SIZE - 1
                        struct.pack_into("<i", buf, at + 4, rel)
                else:
                    raise LinkError(f"{where}: relocation type {r.type} is not supported by SBF v0")

    if entry not in defined:
        raise LinkError(f"no definition of the entry symbol {entry!r}")
    eoi, esym = defined[entry]
    entry_addr = symbol_address(eoi, esym, entry)
    assert entry_addr is not None
    if not text_off <= entry_addr < text_off + len(text):
        raise LinkError(f"entry symbol {entry!r} is not in .text")

    # Dynamic tables: one .dynsym entry per syscall name, one R_BPF_64_32 per call site.
    names_order: list[str] = []
    for _, name in syscall_sites:
        if name not in names_order:
            names_order.append(name)
    dynstr = bytearray(b"\0")
    dynsym = bytearray(b"\0" * 24)
    sym_index: dict[str, int] = {}
    for i, name in enumerate(names_order, start=1):
        sym_index[name] = i
        dynsym += struct.pack("<IBBHQQ", len(dynstr), (STB_GLOBAL << 4) | STT_NOTYPE, 0, SHN_UNDEF, 0, 0)
        dynstr += name.encode() + b"\0"
    reldyn = b"".join(
        struct.pack("<QQ", off, (sym_index[name] << 32) | R_BPF_64_32) for off, name in syscall_sites
    )

    dynamic_off = _align(rodata_off + len(rodata), 8)
    n_dyn = 8 if reldyn else 5
    dynsym_off = dynamic_off + n_dyn * 16
    dynstr_off = dynsym_off + len(dynsym)
    reldyn_off = _align(dynstr_off + len(dynstr), 8)
    dyn_entries = [(DT_SYMTAB, dynsym_off), (DT_STRTAB, dynstr_off), (DT_STRSZ, len(dynstr)), (DT_SYMENT, 24)]
    if reldyn:
        dyn_entries += [(DT_REL, reldyn_off), (DT_RELSZ, len(reldyn)), (DT_RELENT, 16)]
    dyn_entries.append((DT_NULL, 0))
    dynamic = b"".join(struct.pack("<qQ", tag, val) for tag, val in dyn_entries)
    assert len(dynamic) == n_dyn * 16

    shstrtab = bytearray(b"\0")

    def shname(name: str) -> int:
        off = len(shstrtab)
        shstrtab.extend(name.encode() + b"\0")
        return off

    shstr_off = reldyn_off + len(reldyn)
    # Section headers: (name, type, flags, offset, size, link, info, align, entsize)
    headers: list[tuple[int, int, int, int, int, int, int, int, int]] = [(0, SHT_NULL, 0, 0, 0, 0, 0, 0, 0)]
    headers.append(
        (shname(".text"), SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, text_off, len(text), 0, 0, 8, 0)
    )
    if rodata:
        headers.append((shname(".rodata"), SHT_PROGBITS, SHF_ALLOC, rodata_off, len(rodata), 0, 0, 8, 0))
    dynstr_index = len(headers) + 2
    dynsym_index = len(headers) + 1
    headers.append(
        (shname(".dynamic"), SHT_DYNAMIC, SHF_ALLOC, dynamic_off, len(dynamic), dynstr_index, 0, 8, 16)
    )
    headers.append(
        (shname(".dynsym"), SHT_DYNSYM, SHF_ALLOC, dynsym_off, len(dynsym), dynstr_index, 1, 8, 24)
    )
    headers.append((shname(".dynstr"), SHT_STRTAB, SHF_ALLOC, dynstr_off, len(dynstr), 0, 0, 1, 0))
    if reldyn:
        headers.append(
            (shname(".rel.dyn"), SHT_REL, SHF_ALLOC, reldyn_off, len(reldyn), dynsym_index, 0, 8, 16)
        )
    shstrtab_name = shname(".shstrtab")
    headers.append((shstrtab_name, SHT_STRTAB, 0, shstr_off, 0, 0, 0, 1, 0))
    headers[-1] = (shstrtab_name, SHT_STRTAB, 0, shstr_off, len(shstrtab), 0, 0, 1, 0)
    shoff = _align(shstr_off + len(shstrtab), 8)

    dyn_end = reldyn_off + len(reldyn)
    phdrs = [(PT_LOAD, PF_R | PF_X, text_off, len(text))]
    if rodata:
        phdrs.append((PT_LOAD, PF_R, rodata_off, len(rodata)))
    phdrs.append((PT_LOAD, PF_R, dynamic_off, dyn_end - dynamic_off))
    phdrs.append((PT_DYNAMIC, PF_R, dynamic_off, len(dynamic)))
    assert len(phdrs) == n_phdrs

    out = bytearray(shoff + 64 * len(headers))
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8
    struct.pack_into(
        "<16sHHIQQQIHHHHHH",
        out,
        0,
        ident,
        ET_DYN,
        EM_BPF,
        1,
        entry_addr,
        ehdr_size,
        shoff,
        0,
        ehdr_size,
        phdr_size,
        len(phdrs),
        64,
        len(headers),
        len(headers) - 1,
    )
    for i, (ptype, pflags, off, size) in enumerate(phdrs):
        struct.pack_into(
            "<IIQQQQQQ", out, ehdr_size + i * phdr_size, ptype, pflags, off, off, off, size, size, 8
        )
    out[text_off : text_off + len(text)] = text
    out[rodata_off : rodata_off + len(rodata)] = rodata
    out[dynamic_off : dynamic_off + len(dynamic)] = dynamic
    out[dynsym_off : dynsym_off + len(dynsym)] = dynsym
    out[dynstr_off : dynstr_off + len(dynstr)] = dynstr
    out[reldyn_off : reldyn_off + len(reldyn)] = reldyn
    out[shstr_off : shstr_off + len(shstrtab)] = shstrtab
    for i, (sh_name, typ, flags, off, size, link_, info, align, entsize) in enumerate(headers):
        addr = off if flags & SHF_ALLOC else 0
        struct.pack_into(
            "<IIQQQQIIQQ",
            out,
            shoff + i * 64,
            sh_name,
            typ,
            flags,
            addr,
            off,
            size,
            link_,
            info,
            align,
            entsize,
        )
    return LinkedProgram(bytes(out), entry_addr, len(text), len(rodata), tuple(names_order))


def link_files(objects: Sequence[Path], out: Path, entry: str = "entrypoint") -> LinkedProgram:
    """Link object files on disk and write the program to `out`."""
    program = link([p.read_bytes() for p in objects], [str(p) for p in objects], entry)
    out.write_bytes(program.elf)
    return program
