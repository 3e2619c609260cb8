/* Reference kernels mirroring TF-Lite Micro's portable integer kernels (see kernels_ref.h). */
#include "kernels_ref.h"

#include "te_common.h"

static inline int32_t clamp_act(int32_t v, int32_t lo, int32_t hi) {
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
}

/* reference_integer_ops::ConvPerChannel (batch 1, dilation 1). */
void ref_conv2d(const ref_params *p, const int32_t *mult, const int32_t *shift, ref_shape in,
                const int8_t *input, int32_t kh, int32_t kw, const int8_t *filter,
                const int32_t *bias, ref_shape out, int8_t *output) {
    for (int32_t out_y = 0; out_y < out.h; ++out_y) {
        const int32_t in_y_origin = out_y * p->stride_h - p->pad_top;
        for (int32_t out_x = 0; out_x < out.w; ++out_x) {
            const int32_t in_x_origin = out_x * p->stride_w - p->pad_left;
            for (int32_t out_channel = 0; out_channel < out.c; ++out_channel) {
                int32_t acc = 0;
                for (int32_t filter_y = 0; filter_y < kh; ++filter_y) {
                    const int32_t in_y = in_y_origin + filter_y;
                    for (int32_t filter_x = 0; filter_x < kw; ++filter_x) {
                        const int32_t in_x = in_x_origin + filter_x;
                        const int is_point_inside_image =
                            (in_x >= 0) && (in_x < in.w) && (in_y >= 0) && (in_y < in.h);
                        if (!is_point_inside_image) {
                            continue;
                        }
                        for (int32_t in_channel = 0; in_channel < in.c; ++in_channel) {
                            const int32_t input_val = input[(in_y * in.w + in_x) * in.c + in_channel];
                            const int32_t filter_val =
                                filter[((out_channel * kh + filter_y) * kw + filter_x) * in.c +
                                       in_channel];
                            acc += filter_val * (input_val + p->input_offset);
                        }
                    }
                }
                acc += bias[out_channel];
                acc = te_requantize(acc, mult[out_channel], shift[out_channel]);
                acc += p->output_offset;
                output[(out_y * out.w + out_x) * out.c + out_channel] =
                    (int8_t)clamp_act(acc, p->act_min, p->act_max);
            }
        }
    }
}

/* reference_integer_ops::DepthwiseConvPerChannel (batch 1, dilation 1, depth multiplier 1). */
void ref_depthwise_conv2d(const ref_params *p, const int32_t *mult, const int32_t *shift,
                          ref_shape in, const int8_t *input, int32_t kh, int32_t kw,
                          const int8_t *filter, const int32_t *bias, ref_shape out,
                          int8_t *output) {
    for (int32_t out_y = 0; out_y < out.h; ++out_y) {
        for (int32_t out_x = 0; out_x < out.w; ++out_x) {
            for (int32_t in_channel = 0; in_channel < in.c; ++in_channel) {
                const int32_t output_channel = in_channel;
                const int32_t in_x_origin = out_x * p->stride_w - p->pad_left;
                const int32_t in_y_origin = out_y * p->stride_h - p->pad_top;
                int32_t acc = 0;
                for (int32_t filter_y = 0; filter_y < kh; ++filter_y) {
                    for (int32_t filter_x = 0; filter_x < kw; ++filter_x) {
                        const int32_t in_x = in_x_origin + filter_x;
                        const int32_t in_y = in_y_origin + filter_y;
                        const int is_point_inside_image =
                            (in_x >= 0) && (in_x < in.w) && (in_y >= 0) && (in_y < in.h);
                        if (is_point_inside_image) {
                            const int32_t input_val = input[(in_y * in.w + in_x) * in.c + in_channel];
                            const int32_t filter_val =
                                filter[(filter_y * kw + filter_x) * out.c + output_channel];
                            acc += filter_val * (input_val + p->input_offset);
                        }
                    }
                }
                acc += bias[output_channel];
                acc = te_requantize(acc, mult[output_channel], shift[output_channel]);
                acc += p->output_offset;
                output[(out_y * out.w + out_x) * out.c + output_channel] =
                    (int8_t)clamp_act(acc, p->act_min, p->act_max);
            }
        }
    }
}

/* reference_integer_ops::FullyConnected (batch 1, weights zero point 0, per-channel scales). */
void ref_fully_connected(const ref_params *p, const int32_t *mult, const int32_t *shift,
                         int32_t in_features, const int8_t *input, const int8_t *filter,
                         const int32_t *bias, int32_t out_features, int8_t *output) {
    for (int32_t out_c = 0; out_c < out_features; ++out_c) {
        int32_t acc = 0;
        for (int32_t d = 0; d < in_features; ++d) {
            const int32_t input_val = input[d];
            const int32_t filter_val = filter[out_c * in_features + d];
            acc += filter_val * (input_val + p->input_offset);
        }
        acc += bias[out_c];
        acc = te_requantize(acc, mult[out_c], shift[out_c]);
        acc += p->output_offset;
        output[out_c] = (int8_t)clamp_act(acc, p->act_min, p->act_max);
    }
}

/* reference_integer_ops::AddElementwise. */
void ref_add(const ref_add_params *p, int32_t size, const int8_t *input1, const int8_t *input2,
             int8_t *output) {
    for (int32_t i = 0; i < size; ++i) {
        const int32_t input1_val = p->input1_offset + input1[i];
        const int32_t input2_val = p->input2_offset + input2[i];
        const int32_t shifted_input1_val = input1_val * (1 << p->left_shift);
        const int32_t shifted_input2_val = input2_val * (1 << p->left_shift);
        const int32_t scaled_input1_val =
            te_requantize(shifted_input1_val, p->input1_multiplier, p->input1_shift);
        const int32_t scaled_input2_val =
            te_requantize(shifted_input2_val, p->input2_multiplier, p->input2_shift);
        const int32_t raw_sum = scaled_input1_val + scaled_input2_val;
        const int32_t raw_output =
            te_requantize(raw_sum, p->output_multiplier, p->output_shift) + p->output_offset;
        output[i] = (int8_t)clamp_act(raw_output, p->act_min, p->act_max);
    }
}

/* reference_integer_ops::AveragePool: the count excludes padding, round half away from zero. */
void ref_avg_pool2d(const ref_params *p, ref_shape in, const int8_t *input, int32_t fh,
                    int32_t fw, ref_shape out, int8_t *output) {
    for (int32_t out_y = 0; out_y < out.h; ++out_y) {
        for (int32_t out_x = 0; out_x < out.w; ++out_x) {
            for (int32_t channel = 0; channel < in.c; ++channel) {
                const int32_t in_x_origin = out_x * p->stride_w - p->pad_left;
                const int32_t in_y_origin = out_y * p->stride_h - p->pad_top;
                const int32_t filter_x_start = in_x_origin < 0 ? -in_x_origin : 0;
                const int32_t filter_x_end = in.w - in_x_origin < fw ? in.w - in_x_origin : fw;
                const int32_t filter_y_start = in_y_origin < 0 ? -in_y_origin : 0;
                const int32_t filter_y_end = in.h - in_y_origin < fh ? in.h - in_y_origin : fh;
                int32_t acc = 0;
                int32_t filter_count = 0;
                for (int32_t filter_y = filter_y_start; filter_y < filter_y_end; ++filter_y) {
                    for (int32_t filter_x = filter_x_start; filter_x < filter_x_end; ++filter_x) {
                        const int32_t in_x = in_x_origin + filter_x;
                        const int32_t in_y = in_y_origin + filter_y;
                        acc += input[(in_y * in.w + in_x) * in.c + channel];
                        filter_count++;
                    }
                }
                if (filter_count == 0) {
                    filter_count = 1; /* TF-Lite rejects this at prepare; keep the division safe */
                }
                acc = acc > 0 ? (acc + filter_count / 2) / filter_count
                              : (acc - filter_count / 2) / filter_count;
                output[(out_y * out.w + out_x) * out.c + channel] =
                    (int8_t)clamp_act(acc, p->act_min, p->act_max);
            }
        }
    }
}

/* reference_integer_ops::MaxPool. */
void ref_max_pool2d(const ref_params *p, ref_shape in, const int8_t *input, int32_t fh,
                    int32_t fw, ref_shape out, int8_t *output) {
    for (int32_t out_y = 0; out_y < out.h; ++out_y) {
        for (int32_t out_x = 0; out_x < out.w; ++out_x) {
            for (int32_t channel = 0; channel < in.c; ++channel) {
                const int32_t in_x_origin = out_x * p->stride_w - p->pad_left;
                const int32_t in_y_origin = out_y * p->stride_h - p->pad_top;
                const int32_t filter_x_start = in_x_origin < 0 ? -in_x_origin : 0;
                const int32_t filter_x_end = in.w - in_x_origin < fw ? in.w - in_x_origin : fw;
                const int32_t filter_y_start = in_y_origin < 0 ? -in_y_origin : 0;
                const int32_t filter_y_end = in.h - in_y_origin < fh ? in.h - in_y_origin : fh;
                int32_t max = -128;
                for (int32_t filter_y = filter_y_start; filter_y < filter_y_end; ++filter_y) {
                    for (int32_t filter_x = filter_x_start; filter_x < filter_x_end; ++filter_x) {
                        const int32_t in_x = in_x_origin + filter_x;
                        const int32_t in_y = in_y_origin + filter_y;
                        const int32_t v = input[(in_y * in.w + in_x) * in.c + channel];
                        max = v > max ? v : max;
                    }
                }
                output[(out_y * out.w + out_x) * out.c + channel] =
                    (int8_t)clamp_act(max, p->act_min, p->act_max);
            }
        }
    }
}

/* reference::PadImpl for a 4-D NHWC tensor padded in H and W. */
void ref_pad(ref_shape in, const int8_t *input, int32_t pad_top, int32_t pad_left,
             int8_t pad_value, ref_shape out, int8_t *output) {
    for (int32_t out_y = 0; out_y < out.h; ++out_y) {
        for (int32_t out_x = 0; out_x < out.w; ++out_x) {
            for (int32_t c = 0; c < out.c; ++c) {
                const int32_t in_y = out_y - pad_top;
                const int32_t in_x = out_x - pad_left;
                const int inside = in_y >= 0 && in_y < in.h && in_x >= 0 && in_x < in.w;
                *output++ = inside ? input[(in_y * in.w + in_x) * in.c + c] : pad_value;
            }
        }
    }
}

/* RESHAPE: a copy into the output's own buffer, as TF-Lite Micro does when they differ. */
void ref_copy(int32_t size, const int8_t *input, int8_t *output) { te_copy(output, input, size); }
