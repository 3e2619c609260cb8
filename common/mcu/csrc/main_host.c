/* Host harness: reads MODEL_INPUT_BYTES raw int8 bytes from stdin, runs the model and writes
 * MODEL_OUTPUT_BYTES raw int8 bytes to stdout. An optional argument N repeats the inference N
 * times (input restored each time, since the arena reuses the input's buffer) and prints the
 * mean seconds per inference to stderr. With the argument --batch it reads inputs until the end
 * of stdin and writes one output per input, in order. A model with a streamed input
 * (MODEL_STREAMS_INPUT) reads its tiles from the frame held here, outside the arena. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model.h"

#if defined(MODEL_STREAMS_INPUT)
static int8_t frame[MODEL_INPUT_BYTES];

void model_read_input(int8_t *dst, int32_t y0, int32_t x0, int32_t rows, int32_t cols) {
    if (y0 < 0 || x0 < 0 || rows < 0 || cols < 0 || y0 + rows > MODEL_INPUT_H ||
        x0 + cols > MODEL_INPUT_W) {
        fprintf(stderr, "model_read_input: window outside the frame\n");
        exit(2);
    }
    for (int32_t r = 0; r < rows; ++r) {
        memcpy(dst + (size_t)r * cols * MODEL_INPUT_C,
               frame + ((size_t)(y0 + r) * MODEL_INPUT_W + x0) * MODEL_INPUT_C,
               (size_t)cols * MODEL_INPUT_C);
    }
}

static void load_input(const int8_t *src) { memcpy(frame, src, MODEL_INPUT_BYTES); }
#else
static void load_input(const int8_t *src) { memcpy(model_input(), src, MODEL_INPUT_BYTES); }
#endif

int main(int argc, char **argv) {
    static int8_t input[MODEL_INPUT_BYTES];
    if (argc > 1 && strcmp(argv[1], "--batch") == 0) {
        size_t got;
        while ((got = fread(input, 1, MODEL_INPUT_BYTES, stdin)) == (size_t)MODEL_INPUT_BYTES) {
            load_input(input);
            model_invoke();
            if (fwrite(model_output(), 1, MODEL_OUTPUT_BYTES, stdout) !=
                (size_t)MODEL_OUTPUT_BYTES) {
                return 1;
            }
        }
        if (got != 0) {
            fprintf(stderr, "stdin ended inside an input (%zu of %d bytes)\n", got,
                    MODEL_INPUT_BYTES);
            return 1;
        }
        return 0;
    }
    long repeat = argc > 1 ? strtol(argv[1], NULL, 10) : 1;
    if (repeat < 1) {
        repeat = 1;
    }
    if (fread(input, 1, MODEL_INPUT_BYTES, stdin) != (size_t)MODEL_INPUT_BYTES) {
        fprintf(stderr, "expected %d input bytes on stdin\n", MODEL_INPUT_BYTES);
        return 1;
    }
    clock_t start = clock();
    for (long r = 0; r < repeat; ++r) {
        load_input(input);
        model_invoke();
    }
    clock_t end = clock();
    if (argc > 1) {
        fprintf(stderr, "%.9f\n", (double)(end - start) / CLOCKS_PER_SEC / (double)repeat);
    }
    if (fwrite(model_output(), 1, MODEL_OUTPUT_BYTES, stdout) != (size_t)MODEL_OUTPUT_BYTES) {
        return 1;
    }
    return 0;
}
