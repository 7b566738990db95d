"""Device faults in words: the FAULT frame's registers decoded (CFSR/HFSR bits, fault address,
what they mean), and the code at the faulting PC named from the firmware's ELF symbols."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from mcudeploy.errors import DeviceFault


@dataclass(frozen=True)
class FaultReport:
    """The registers of a FAULT packet."""

    cfsr: int
    hfsr: int
    mmfar: int
    bfar: int
    pc: int
    lr: int
    xpsr: int
    exception: int

    def causes(self) -> list[tuple[str, str]]:
        """The set CFSR and HFSR bits, each as (mnemonic, meaning in words), with the fault address
        where the CPU recorded one."""
        found = []
        for mask, bit, words in _CFSR_BITS:
            if not self.cfsr & mask:
                continue
            register, address = _FAULT_ADDRESS.get(bit, ("", 0))
            if register and self.cfsr & address:
                value = self.mmfar if register == "MMFAR" else self.bfar
                bit = f"{bit} at {register} 0x{value:08X}"
                words = words.format(at=f" at 0x{value:08X}")
            found.append((bit, words.format(at="")))
        return found + [(bit, words) for mask, bit, words in _HFSR_BITS if self.hfsr & mask]

    def describe(self, function: str | None = None) -> str:
        """One line: the exception, its decoded CFSR/HFSR bits, where it happened (`function`: the
        code at PC, when the caller knows it) and what the bits mean in words."""
        name = _EXCEPTIONS.get(self.exception, f"exception {self.exception}")
        causes = self.causes()
        detail = f" ({', '.join(bit for bit, _ in causes)})" if causes else ""
        where = f" in {function}" if function else ""
        words = "; ".join(w for _, w in causes)
        if self.stacked:
            place = f"at PC 0x{self.pc:08X}{where}, LR 0x{self.lr:08X}, xPSR 0x{self.xpsr:08X}"
        else:
            place = "with no exception frame on the stack (PC unknown: the stack overflowed)"
        return f"device fault: {name}{detail} {place}" + (f": {words}" if words else "")

    @property
    def stacked(self) -> bool:
        """Whether PC, LR and xPSR come from an exception frame (the device sends 0xFFFFFFFF for
        each when the frame lies outside the stack or was not pushed)."""
        return not self.pc == self.lr == self.xpsr == NO_FRAME


NO_FRAME = 0xFFFFFFFF
# The CFSR bits whose fault address register is valid when the *ARVALID bit is set.
_FAULT_ADDRESS = {"DACCVIOL": ("MMFAR", 1 << 7), "PRECISERR": ("BFAR", 1 << 15)}
_EXCEPTIONS = {2: "NMI", 3: "HardFault", 4: "MemManage", 5: "BusFault", 6: "UsageFault",
               7: "SecureFault", 11: "SVCall", 12: "DebugMonitor", 14: "PendSV"}
_CFSR_BITS = (
    (1 << 0, "IACCVIOL", "instruction fetch from memory the MPU forbids"),
    (1 << 1, "DACCVIOL", "data access{at} that the MPU forbids"),
    (1 << 3, "MUNSTKERR", "MPU fault while unstacking on exception return"),
    (1 << 4, "MSTKERR", "MPU fault while stacking on exception entry"),
    (1 << 5, "MLSPERR", "MPU fault while saving the FPU state lazily"),
    (1 << 8, "IBUSERR", "bus error on an instruction fetch"),
    (1 << 9, "PRECISERR", "a load or store{at} that no memory answered"),
    (1 << 10, "IMPRECISERR", "a store that no memory answered (imprecise: PC is after it)"),
    (1 << 11, "UNSTKERR", "bus error while unstacking on exception return"),
    (1 << 12, "STKERR", "bus error while stacking on exception entry (stack overflow?)"),
    (1 << 13, "LSPERR", "bus error while saving the FPU state lazily"),
    (1 << 16, "UNDEFINSTR", "undefined instruction"),
    (1 << 17, "INVSTATE", "invalid execution state (a jump to an address without the Thumb bit)"),
    (1 << 18, "INVPC", "invalid EXC_RETURN on exception return"),
    (1 << 19, "NOCP", "FPU/MVE instruction with the coprocessor disabled"),
    (1 << 20, "STKOF", "stack overflow (the stack limit was crossed)"),
    (1 << 24, "UNALIGNED", "unaligned memory access"),
    (1 << 25, "DIVBYZERO", "integer division by zero"),
)
_HFSR_BITS = (
    (1 << 1, "VECTTBL", "bus error reading the vector table"),
    (1 << 30, "FORCED", "escalated to HardFault"),
    (1 << 31, "DEBUGEVT", "debug event"),
)


class CpuFault(DeviceFault):
    """The device reported a CPU fault; `report` holds its registers."""

    def __init__(self, report: FaultReport) -> None:
        super().__init__(report.describe())
        self.report = report


def function_at(elf: Path, address: int) -> str | None:
    """The function whose code holds `address` (`name+0x1c`), or None if no symbol covers it."""
    try:
        with open(elf, "rb") as f:
            table = ELFFile(f).get_section_by_name(".symtab")
            if not isinstance(table, SymbolTableSection):
                return None
            for symbol in table.iter_symbols():
                if symbol["st_info"]["type"] != "STT_FUNC" or not symbol["st_size"]:
                    continue
                start = symbol["st_value"] & ~1
                if start <= address < start + symbol["st_size"]:
                    return f"{symbol.name}+0x{address - start:x}"
    except (OSError, ELFError):
        return None
    return None
