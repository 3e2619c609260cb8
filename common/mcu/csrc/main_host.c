/* Host harness: reads MODEL_INPUT_BYTES raw int8 bytes from stdin, runs the model and writes
 * MODEL_OUTPUT_BYTES raw int8 bytes to stdout. An optional argument N repeats the inference N
 * times (input restored each time, since the arena reuses the input's buffer) and prints the
 * mean seconds per inference to stderr. With the argument --batch it reads inputs until the end
 * of stdin and writes one output per input, in order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model.h"

int main(int argc, char **argv) {
    static int8_t input[MODEL_INPUT_BYTES];
    if (argc > 1 && strcmp(argv[1], "--batch") == 0) {
        size_t got;
        while ((got = fread(input, 1, MODEL_INPUT_BYTES, stdin)) == (size_t)MODEL_INPUT_BYTES) {
            memcpy(model_input(), input, MODEL_INPUT_BYTES);
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
        memcpy(model_input(), input, MODEL_INPUT_BYTES);
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
