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
 * A model with a streamed input (MODEL_STREAMS_INPUT, patch-based inference) has no input buffer:
 * MCU_SH_WRITE_INPUT gets r1 = 0 (it only marks the start) and model_read_input asks the host
 * for each tile's window with MCU_SH_READ_TILE (the host plays the camera).
 *
 * Standalone build (-DMCU_STANDALONE): no application-defined operations, so it also runs on
 * QEMU (mps2-an500). The input is the fixed pattern (int8_t)(7 * i + 3); the output is printed as
 * hexadecimal with SYS_WRITE0, 32 bytes per line.
 */
#include <stdint.h>

#include "mcu_semihost.h"
#include "model.h"

#if defined(MODEL_STREAMS_INPUT)
void model_read_input(int8_t *dst, int32_t y0, int32_t x0, int32_t rows, int32_t cols) {
#if defined(MCU_STANDALONE)
    /* the standalone input pattern, (int8_t)(7 * i + 3) at flat NHWC index i */
    for (int32_t r = 0; r < rows; ++r) {
        for (int32_t k = 0; k < cols * MODEL_INPUT_C; ++k) {
            uint32_t i = (uint32_t)((y0 + r) * MODEL_INPUT_W + x0) * MODEL_INPUT_C + (uint32_t)k;
            *dst++ = (int8_t)(7u * i + 3u);
        }
    }
#else
    static int32_t window[6];
    window[0] = y0;
    window[1] = x0;
    window[2] = rows;
    window[3] = cols;
    window[4] = MODEL_INPUT_W;
    window[5] = MODEL_INPUT_C;
    mcu_sh_call(MCU_SH_READ_TILE, (uint32_t)dst, (uint32_t)window);
#endif
}
#endif

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
    int8_t *in = model_input(); /* NULL for a streamed input */
    const int8_t *out = model_output();
#if defined(MCU_STANDALONE)
#if !defined(MODEL_STREAMS_INPUT)
    for (uint32_t i = 0; i < (uint32_t)MODEL_INPUT_BYTES; ++i) {
        in[i] = (int8_t)(7u * i + 3u);
    }
#endif
    (void)in;
    model_invoke();
    print_hex(out, (uint32_t)MODEL_OUTPUT_BYTES);
#else
    mcu_sh_call(MCU_SH_WRITE_INPUT, (uint32_t)in, (uint32_t)MODEL_INPUT_BYTES);
    model_invoke();
    mcu_sh_call(MCU_SH_READ_OUTPUT, (uint32_t)out, (uint32_t)MODEL_OUTPUT_BYTES);
#endif
    mcu_sh_exit(MCU_ADP_STOPPED_APPLICATION_EXIT);
}
