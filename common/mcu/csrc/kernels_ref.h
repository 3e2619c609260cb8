/* Portable reference kernels, structured like TF-Lite Micro's reference integer kernels
 * (tensorflow/lite/kernels/internal/reference/integer_ops/{conv,depthwise_conv,fully_connected,
 * add,pooling}.h and reference/pad.h): run-time shapes, the padding check inside the filter loops,
 * one requantization per output. The baseline the specialized kernels are measured against.
 */
#ifndef KERNELS_REF_H
#define KERNELS_REF_H

#include <stdint.h>

/* Mirrors tflite::ConvParams / DepthwiseParams / PoolParams for the int8 case. */
typedef struct {
    int32_t stride_h, stride_w;
    int32_t pad_top, pad_left;
    int32_t input_offset;  /* -input zero point */
    int32_t output_offset; /* output zero point */
    int32_t act_min, act_max;
} ref_params;

/* NHWC activation shape with batch 1. */
typedef struct {
    int32_t h, w, c;
} ref_shape;

void ref_conv2d(const ref_params *p, const int32_t *mult, const int32_t *shift, ref_shape in,
                const int8_t *input, int32_t kh, int32_t kw, const int8_t *filter,
                const int32_t *bias, ref_shape out, int8_t *output);

void ref_depthwise_conv2d(const ref_params *p, const int32_t *mult, const int32_t *shift,
                          ref_shape in, const int8_t *input, int32_t kh, int32_t kw,
                          const int8_t *filter, const int32_t *bias, ref_shape out,
                          int8_t *output);

void ref_fully_connected(const ref_params *p, const int32_t *mult, const int32_t *shift,
                         int32_t in_features, const int8_t *input, const int8_t *filter,
                         const int32_t *bias, int32_t out_features, int8_t *output);

/* TF-Lite's quantized ADD (left_shift 20). */
typedef struct {
    int32_t left_shift;
    int32_t input1_offset, input1_multiplier, input1_shift;
    int32_t input2_offset, input2_multiplier, input2_shift;
    int32_t output_offset, output_multiplier, output_shift;
    int32_t act_min, act_max;
} ref_add_params;

void ref_add(const ref_add_params *p, int32_t size, const int8_t *input1, const int8_t *input2,
             int8_t *output);

void ref_avg_pool2d(const ref_params *p, ref_shape in, const int8_t *input, int32_t fh,
                    int32_t fw, ref_shape out, int8_t *output);

void ref_max_pool2d(const ref_params *p, ref_shape in, const int8_t *input, int32_t fh,
                    int32_t fw, ref_shape out, int8_t *output);

void ref_pad(ref_shape in, const int8_t *input, int32_t pad_top, int32_t pad_left,
             int8_t pad_value, ref_shape out, int8_t *output);

void ref_copy(int32_t size, const int8_t *input, int8_t *output);

#endif /* KERNELS_REF_H */
