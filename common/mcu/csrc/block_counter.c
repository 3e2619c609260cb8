/* Native instruction counter for the Unicorn Cortex-M emulation (common/mcu/cortexm.py).
 *
 * Registered as Unicorn's UC_HOOK_BLOCK callback: at the start of every translated block it adds
 * the block's instruction count to a counter. The count is read from the loaded image: a Thumb
 * instruction is 32 bits wide when its first halfword's top five bits are 0b11101, 0b11110 or
 * 0b11111, else 16 bits (Armv7-M ARM, A5.1). This is the same count as disassembling the block
 * (every instruction of the block, IT-block instructions whose condition fails included), without
 * a call into Python per block. Built on first use with the host C compiler. */
#include <stdint.h>

typedef int (*stop_fn)(void *uc);

struct block_counter {
    uint64_t count;        /* instructions executed so far */
    uint64_t limit;        /* stop once count exceeds this */
    const uint8_t *image;  /* a copy of the code region */
    uint64_t base;         /* address of image[0] */
    uint64_t size;         /* bytes in image */
    stop_fn stop;          /* uc_emu_stop */
    uint64_t error_address;
    int32_t error;         /* 0 ok, 1 block outside the image, 2 block not whole instructions, 3 limit */
};

void block_counter_hook(void *uc, uint64_t address, uint32_t size, void *user) {
    struct block_counter *c = (struct block_counter *)user;
    if (address < c->base || address - c->base + size > c->size) {
        if (!c->error) {
            c->error = 1;
            c->error_address = address;
        }
        c->stop(uc);
        return;
    }
    const uint8_t *p = c->image + (address - c->base);
    const uint8_t *end = p + size;
    uint64_t n = 0;
    while (p < end) {
        unsigned top = (unsigned)(p[1] >> 3); /* bits 15:11 of the little-endian halfword */
        p += top >= 0x1D ? 4 : 2;
        ++n;
    }
    if (p != end) {
        if (!c->error) {
            c->error = 2;
            c->error_address = address;
        }
        c->stop(uc);
        return;
    }
    c->count += n;
    if (c->count > c->limit) {
        if (!c->error) {
            c->error = 3;
            c->error_address = address;
        }
        c->stop(uc);
    }
}
