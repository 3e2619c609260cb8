/*
 * Arm semihosting from bare-metal Cortex-M code, without libc.
 *
 * A semihosting call is `bkpt 0xAB` with the operation number in r0 and its argument in r1
 * (the Arm "Semihosting for AArch32 and AArch64" specification). Operations 0x100-0x1FF are
 * reserved for applications; the host side (common/mcu/cortexm.py) implements two of them:
 *
 *   MCU_SH_WRITE_INPUT  (0x100)  r1 = input buffer,  r2 = bytes: the host writes the input there
 *   MCU_SH_READ_OUTPUT  (0x101)  r1 = output buffer, r2 = bytes: the host reads the output
 *   MCU_SH_READ_TILE    (0x102)  r1 = destination, r2 = the address of six int32 values
 *                                (y0, x0, rows, cols, frame width, channels): the host writes
 *                                that window of the input frame there, row after row (a model
 *                                with a streamed input; the host plays the camera)
 *
 * For a streamed input, MCU_SH_WRITE_INPUT is called with r1 = 0: it only marks the start.
 *
 * Instructions are counted strictly between these two calls. SYS_WRITE0 and SYS_EXIT are the
 * standard operations and also work under QEMU.
 */
#ifndef MCU_SEMIHOST_H
#define MCU_SEMIHOST_H

#include <stdint.h>

#define MCU_SH_SYS_WRITE0 0x04u
#define MCU_SH_SYS_EXIT 0x18u
#define MCU_SH_WRITE_INPUT 0x100u
#define MCU_SH_READ_OUTPUT 0x101u
#define MCU_SH_READ_TILE 0x102u

/* SYS_EXIT reasons (r1). Only ApplicationExit is a clean exit. */
#define MCU_ADP_STOPPED_APPLICATION_EXIT 0x20026u
#define MCU_ADP_STOPPED_RUNTIME_ERROR 0x20023u

static inline uint32_t mcu_sh_call(uint32_t op, uint32_t arg1, uint32_t arg2) {
    register uint32_t r0 __asm__("r0") = op;
    register uint32_t r1 __asm__("r1") = arg1;
    register uint32_t r2 __asm__("r2") = arg2;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1), "r"(r2) : "memory");
    return r0;
}

static inline void mcu_sh_write0(const char *s) {
    mcu_sh_call(MCU_SH_SYS_WRITE0, (uint32_t)s, 0u);
}

__attribute__((noreturn)) static inline void mcu_sh_exit(uint32_t reason) {
    for (;;) {
        mcu_sh_call(MCU_SH_SYS_EXIT, reason, 0u);
    }
}

#endif /* MCU_SEMIHOST_H */
