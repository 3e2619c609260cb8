/*
 * Cortex-M startup for the generated model projects: vector table, reset handler, fault
 * handlers and the four memory functions GCC may emit calls to even in freestanding code.
 *
 * Compiled with -fno-tree-loop-distribute-patterns so that the loops below are not turned back
 * into calls to memcpy/memset (which would recurse).
 *
 * Symbols from the linker script (link.ld.in):
 *   _sidata          load address of .data in FLASH
 *   _sdata, _edata   .data in RAM
 *   _sbss, _ebss     .bss in RAM
 *   _sstack, _estack the stack reservation (NOLOAD, at the bottom of RAM: an overflow faults)
 */
#include <stddef.h>
#include <stdint.h>

#include "mcu_semihost.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;

int main(void);

__attribute__((noreturn)) void Reset_Handler(void);
__attribute__((noreturn)) void Fault_Handler(void);

/* Coprocessor Access Control Register (System Control Block). */
#define MCU_SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)

void Reset_Handler(void) {
    uint32_t *src = &_sidata;
    uint32_t *dst = &_sdata;
    while (dst < &_edata) {
        *dst++ = *src++;
    }
    for (dst = &_sbss; dst < &_ebss; ++dst) {
        *dst = 0u;
    }
#if defined(__ARM_FP)
    /* Full access to CP10 and CP11 (the FPU); the code is compiled for the hard-float ABI. */
    MCU_SCB_CPACR |= (0xFu << 20);
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    (void)main();
    mcu_sh_exit(MCU_ADP_STOPPED_APPLICATION_EXIT);
}

/* Any fault or unexpected exception: report it and stop with a failure reason. */
void Fault_Handler(void) {
    mcu_sh_write0("mcu: fault or unexpected exception\n");
    mcu_sh_exit(MCU_ADP_STOPPED_RUNTIME_ERROR);
}

typedef void (*mcu_vector_t)(void);

__attribute__((section(".isr_vector"), used)) const mcu_vector_t mcu_vector_table[16] = {
    (mcu_vector_t)(uintptr_t)&_estack, /* initial SP */
    Reset_Handler,
    Fault_Handler, /* NMI */
    Fault_Handler, /* HardFault */
    Fault_Handler, /* MemManage */
    Fault_Handler, /* BusFault */
    Fault_Handler, /* UsageFault */
    0,
    0,
    0,
    0,
    Fault_Handler, /* SVCall */
    Fault_Handler, /* DebugMonitor */
    0,
    Fault_Handler, /* PendSV */
    Fault_Handler, /* SysTick */
};

/* The memory functions a freestanding C implementation must provide (GCC may call them for
 * struct copies and zero-initialised locals). Weak: a project may bring its own. */
__attribute__((weak)) void *memcpy(void *restrict d, const void *restrict s, size_t n) {
    uint8_t *dp = d;
    const uint8_t *sp = s;
    while (n--) {
        *dp++ = *sp++;
    }
    return d;
}

__attribute__((weak)) void *memmove(void *d, const void *s, size_t n) {
    uint8_t *dp = d;
    const uint8_t *sp = s;
    if (dp < sp) {
        while (n--) {
            *dp++ = *sp++;
        }
    } else {
        dp += n;
        sp += n;
        while (n--) {
            *--dp = *--sp;
        }
    }
    return d;
}

__attribute__((weak)) void *memset(void *d, int c, size_t n) {
    uint8_t *dp = d;
    while (n--) {
        *dp++ = (uint8_t)c;
    }
    return d;
}

__attribute__((weak)) int memcmp(const void *a, const void *b, size_t n) {
    const uint8_t *ap = a;
    const uint8_t *bp = b;
    for (; n; --n, ++ap, ++bp) {
        if (*ap != *bp) {
            return (int)*ap - (int)*bp;
        }
    }
    return 0;
}
