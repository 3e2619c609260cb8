/*
 * Firmware entry point for a generated model project (model.h / model.c).
 *
 * Default build: the host (common/mcu/cortexm.py, under Unicorn) supplies the input and reads the
 * output through two application-defined semihosting operations; the instructions executed
 * strictly between them are the inference:
 *
 *   bkpt 0xAB  r0 = 0x100 (MCU_SH_WRITE_INPUT), r1 = model_input(),  r2 = MODEL_INPUT_BYTES
 *   model_invoke()
 *   bkpt 0xAB  r0 = 0x101 (MCU_SH_READ_OUTPUT), r1 = model_output(), r2 = MODEL_OUTPUT_BYTES
 *   SYS_EXIT (0x18, r1 = 0x20026)
 *
 * Standalone build (-DMCU_STANDALONE): no application-defined operations, so it also runs on
 * QEMU (mps2-an500). The input is the fixed pattern (int8_t)(7 * i + 3); the output is printed as
 * hexadecimal with SYS_WRITE0, 32 bytes per line.
 */
#include <stdint.h>

#include "mcu_semihost.h"
#include "model.h"

#if defined(MCU_STANDALONE)
static void print_hex(const int8_t *p, uint32_t n) {
    static const char digits[] = "0123456789abcdef";
    char line[2 * 32 + 2];
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; ++i) {
        uint8_t b = (uint8_t)p[i];
        line[k++] = digits[b >> 4];
        line[k++] = digits[b & 0xFu];
        if (k == 2 * 32 || i + 1 == n) {
            line[k++] = '\n';
            line[k] = '\0';
            mcu_sh_write0(line);
            k = 0;
        }
    }
}
#endif

int main(void) {
    int8_t *in = model_input();
    const int8_t *out = model_output();
#if defined(MCU_STANDALONE)
    for (uint32_t i = 0; i < (uint32_t)MODEL_INPUT_BYTES; ++i) {
        in[i] = (int8_t)(7u * i + 3u);
    }
    model_invoke();
    print_hex(out, (uint32_t)MODEL_OUTPUT_BYTES);
#else
    mcu_sh_call(MCU_SH_WRITE_INPUT, (uint32_t)in, (uint32_t)MODEL_INPUT_BYTES);
    model_invoke();
    mcu_sh_call(MCU_SH_READ_OUTPUT, (uint32_t)out, (uint32_t)MODEL_OUTPUT_BYTES);
#endif
    mcu_sh_exit(MCU_ADP_STOPPED_APPLICATION_EXIT);
}
