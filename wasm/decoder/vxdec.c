/*
 * vxdec: the small C surface vx's decoder core exports (wasm/decoder.ts wraps it).
 *
 * Three objects, each a loop the caller drives:
 *   - an input: a container demuxed through a read callback into the host (a file, a URL by range,
 *     bytes in memory), listed as JSON, read packet by packet;
 *   - a decoder: a codec opened from an input's stream, packets in and frames out;
 *   - a conversion: a frame through a libavfilter chain (scale, letterbox, pixel format) into the
 *     caller's buffer, packed plane after plane; or into a JPEG.
 * Numbers that may exceed 32 bits cross as doubles (no BigInt in the glue); a missing timestamp
 * is NaN. Every log line goes to the host with its level and whether the decoder wrote it.
 */
#include <emscripten.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "libavcodec/avcodec.h"
#include "libavfilter/avfilter.h"
#include "libavfilter/buffersink.h"
#include "libavfilter/buffersrc.h"
#include "libavformat/avformat.h"
#include "libavutil/bprint.h"
#include "libavutil/display.h"
#include "libavutil/imgutils.h"
#include "libavutil/opt.h"
#include "libavutil/pixdesc.h"
#include <dav1d/dav1d.h>

EM_JS(int, vx_host_read, (int source, uint8_t *buf, int len, double pos), {
  return Module.vxRead(source, buf, len, pos);
});
EM_JS(void, vx_host_log, (int level, int decoder, const char *line), {
  Module.vxLog(level, decoder, UTF8ToString(line));
});

/* ---- logging and time ---------------------------------------------------------------------- */

static const AVCodecContext *logging_decoder;
static double deadline = 0;

static void log_line(void *avcl, int level, const char *fmt, va_list vl) {
  static int print_prefix = 1;
  char line[1024];
  if (level > AV_LOG_INFO) return;
  av_log_format_line(avcl, level, fmt, vl, line, sizeof(line), &print_prefix);
  int from_decoder = avcl != NULL && avcl == logging_decoder;
  vx_host_log(level, from_decoder, line);
}

/** Calls into the library after `ms` (the host's performance.now() clock) fail; 0: never. */
EMSCRIPTEN_KEEPALIVE void vx_set_deadline(double ms) { deadline = ms; }

static int interrupted(void *opaque) {
  (void)opaque;
  return deadline > 0 && emscripten_get_now() > deadline;
}

static char error_text[256];

/** The text of the last error a function here returned. */
EMSCRIPTEN_KEEPALIVE const char *vx_error(void) { return error_text; }

static int fail(int err, const char *what) {
  char reason[200];
  av_strerror(err, reason, sizeof(reason));
  snprintf(error_text, sizeof(error_text), "%s%s%s", what, *what ? ": " : "", reason);
  return err;
}

static double ts(int64_t t) { return t == AV_NOPTS_VALUE ? NAN : (double)t; }
static int64_t from_ts(double t) { return isnan(t) ? AV_NOPTS_VALUE : (int64_t)t; }

/** FFmpeg's and dav1d's versions, as JSON. */
EMSCRIPTEN_KEEPALIVE const char *vx_versions(void) {
  static char out[160];
  snprintf(out, sizeof(out), "{\"ffmpeg\":\"%s\",\"dav1d\":\"%s\"}", av_version_info(),
           dav1d_version());
  return out;
}

/* ---- input ---------------------------------------------------------------------------------- */

typedef struct VxInput {
  AVFormatContext *fmt;
  AVIOContext *io;
  AVPacket *pkt;
  int source;
  int64_t size, pos;
  char *info;
  /* The packet just read: stream, pts, dts, byte offset, flags, size. */
  double packet[6];
} VxInput;

static int io_read(void *opaque, uint8_t *buf, int len) {
  VxInput *in = opaque;
  if (in->pos >= in->size) return AVERROR_EOF;
  int n = vx_host_read(in->source, buf, len, (double)in->pos);
  if (n < 0) return AVERROR(EIO);
  if (n == 0) return AVERROR_EOF;
  in->pos += n;
  return n;
}

static int64_t io_seek(void *opaque, int64_t offset, int whence) {
  VxInput *in = opaque;
  whence &= ~AVSEEK_FORCE;
  if (whence == AVSEEK_SIZE) return in->size;
  int64_t to = whence == SEEK_SET   ? offset
               : whence == SEEK_CUR ? in->pos + offset
               : whence == SEEK_END ? in->size + offset
                                    : -1;
  if (to < 0) return AVERROR(EINVAL);
  in->pos = to;
  return to;
}

EMSCRIPTEN_KEEPALIVE void vx_input_close(VxInput *in) {
  if (!in) return;
  avformat_close_input(&in->fmt);
  if (in->io) av_freep(&in->io->buffer);
  avio_context_free(&in->io);
  av_packet_free(&in->pkt);
  av_free(in->info);
  av_free(in);
}

/**
 * Opens the container behind host source `source` (`size` bytes). With `find_info`, the streams'
 * parameters are completed by reading ahead as ffprobe does; without, the header alone answers.
 * NULL on failure (vx_error() says why).
 */
EMSCRIPTEN_KEEPALIVE VxInput *vx_input_open(int source, double size, int find_info) {
  static int logging = 0;
  if (!logging) {
    av_log_set_callback(log_line);
    logging = 1;
  }
  VxInput *in = av_mallocz(sizeof(*in));
  int ret = AVERROR(ENOMEM);
  if (!in) return NULL;
  in->source = source;
  in->size = (int64_t)size;
  in->pkt = av_packet_alloc();
  uint8_t *buffer = av_malloc(32768);
  in->fmt = avformat_alloc_context();
  if (!in->pkt || !buffer || !in->fmt) goto failed;
  in->io = avio_alloc_context(buffer, 32768, 0, in, io_read, NULL, io_seek);
  if (!in->io) {
    av_free(buffer);
    goto failed;
  }
  in->fmt->pb = in->io;
  in->fmt->interrupt_callback.callback = interrupted;
  ret = avformat_open_input(&in->fmt, "in", NULL, NULL);
  if (ret < 0) {
    in->fmt = NULL;
    goto failed;
  }
  if (find_info && (ret = avformat_find_stream_info(in->fmt, NULL)) < 0) goto failed;
  return in;
failed:
  fail(ret, "");
  vx_input_close(in);
  return NULL;
}

static void json_string(AVBPrint *b, const char *s) {
  av_bprint_chars(b, '"', 1);
  for (; s && *s; s++) {
    if (*s == '"' || *s == '\\') av_bprintf(b, "\\%c", *s);
    else if ((unsigned char)*s < 0x20) av_bprintf(b, "\\u%04x", *s);
    else av_bprint_chars(b, *s, 1);
  }
  av_bprint_chars(b, '"', 1);
}

static void json_number(AVBPrint *b, double v) {
  if (isnan(v) || isinf(v)) av_bprintf(b, "null");
  else av_bprintf(b, "%.17g", v);
}

/**
 * The container and its streams as JSON, in ffprobe's terms: format, duration (s or null), and per
 * stream index, type, codec, width, height, timeBase, avgFrameRate, rFrameRate, startPts,
 * hasBFrames, attachedPic, displayRotation (av_display_rotation_get, or null), rotateTag, pixFmt.
 */
EMSCRIPTEN_KEEPALIVE const char *vx_input_info(VxInput *in) {
  AVBPrint b;
  av_bprint_init(&b, 0, AV_BPRINT_SIZE_UNLIMITED);
  AVFormatContext *f = in->fmt;
  av_bprintf(&b, "{\"format\":");
  json_string(&b, f->iformat->name);
  av_bprintf(&b, ",\"duration\":");
  json_number(&b, f->duration == AV_NOPTS_VALUE ? NAN : f->duration / (double)AV_TIME_BASE);
  av_bprintf(&b, ",\"streams\":[");
  for (unsigned i = 0; i < f->nb_streams; i++) {
    AVStream *st = f->streams[i];
    AVCodecParameters *par = st->codecpar;
    const AVCodecDescriptor *desc = avcodec_descriptor_get(par->codec_id);
    const char *type = av_get_media_type_string(par->codec_type);
    AVDictionaryEntry *rotate = av_dict_get(st->metadata, "rotate", NULL, 0);
    const int32_t *matrix =
        (const int32_t *)av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, NULL);
    av_bprintf(&b, "%s{\"index\":%d,\"type\":", i ? "," : "", st->index);
    json_string(&b, type ? type : "unknown");
    av_bprintf(&b, ",\"codec\":");
    json_string(&b, desc ? desc->name : "unknown");
    av_bprintf(&b, ",\"width\":%d,\"height\":%d,\"timeBase\":\"%d/%d\"", par->width, par->height,
               st->time_base.num, st->time_base.den);
    av_bprintf(&b, ",\"avgFrameRate\":\"%d/%d\",\"rFrameRate\":\"%d/%d\"", st->avg_frame_rate.num,
               st->avg_frame_rate.den, st->r_frame_rate.num, st->r_frame_rate.den);
    av_bprintf(&b, ",\"startPts\":");
    json_number(&b, ts(st->start_time));
    av_bprintf(&b, ",\"hasBFrames\":%d,\"attachedPic\":%d", par->video_delay,
               !!(st->disposition & AV_DISPOSITION_ATTACHED_PIC));
    av_bprintf(&b, ",\"displayRotation\":");
    json_number(&b, matrix ? av_display_rotation_get(matrix) : NAN);
    av_bprintf(&b, ",\"rotateTag\":");
    if (rotate) json_string(&b, rotate->value);
    else av_bprintf(&b, "null");
    av_bprintf(&b, ",\"pixFmt\":");
    const char *pix = par->codec_type == AVMEDIA_TYPE_VIDEO ? av_get_pix_fmt_name(par->format) : 0;
    if (pix) json_string(&b, pix);
    else av_bprintf(&b, "null");
    av_bprintf(&b, "}");
  }
  av_bprintf(&b, "]}");
  av_free(in->info);
  av_bprint_finalize(&b, &in->info);
  return in->info;
}

/**
 * Reads only `stream` from now on: the demuxer drops every other stream's packets, and with
 * `key_only` the non-key packets of this one where it can (mov, flv; others read them anyway).
 */
EMSCRIPTEN_KEEPALIVE void vx_input_select(VxInput *in, int stream, int key_only) {
  for (unsigned i = 0; i < in->fmt->nb_streams; i++) {
    in->fmt->streams[i]->discard =
        (int)i != stream ? AVDISCARD_ALL : key_only ? AVDISCARD_NONKEY : AVDISCARD_DEFAULT;
  }
}

/**
 * Reads the next packet. Returns a view of six doubles (stream, pts, dts, byte offset or NaN,
 * flags, size), or NULL at the end or on an error (vx_error(); "End of file" at the end).
 */
EMSCRIPTEN_KEEPALIVE const double *vx_input_read(VxInput *in) {
  av_packet_unref(in->pkt);
  int ret = av_read_frame(in->fmt, in->pkt);
  if (ret < 0) {
    fail(ret, "");
    return NULL;
  }
  AVPacket *p = in->pkt;
  in->packet[0] = p->stream_index;
  in->packet[1] = ts(p->pts);
  in->packet[2] = ts(p->dts);
  in->packet[3] = p->pos < 0 ? NAN : (double)p->pos;
  in->packet[4] = p->flags;
  in->packet[5] = p->size;
  return in->packet;
}

/** The bytes of the packet just read. */
EMSCRIPTEN_KEEPALIVE const uint8_t *vx_input_packet_data(VxInput *in) { return in->pkt->data; }

/** Seeks `stream` to the key packet at or before `pts` (its time base); <0 on error. */
EMSCRIPTEN_KEEPALIVE int vx_input_seek(VxInput *in, int stream, double pts) {
  int ret = av_seek_frame(in->fmt, stream, (int64_t)pts, AVSEEK_FLAG_BACKWARD);
  return ret < 0 ? fail(ret, "seek") : 0;
}

/* ---- decoder -------------------------------------------------------------------------------- */

typedef struct VxDecoder {
  AVCodecContext *ctx;
  AVFrame *frame, *next;
  AVPacket *pkt;
  /* The frame just received: pts (best effort), width, height, key, picture type, error flags. */
  double info[6];
  /* The conversion last used, kept while its input and chain stay the same. */
  AVFilterGraph *graph;
  AVFilterContext *src, *sink;
  AVFrame *out;
  char *chain;
  int gw, gh, gfmt;
  /* JPEGs */
  AVCodecContext *jpeg;
  AVPacket *jpeg_pkt;
  int64_t jpegs;
} VxDecoder;

EMSCRIPTEN_KEEPALIVE void vx_decoder_close(VxDecoder *d) {
  if (!d) return;
  avcodec_free_context(&d->ctx);
  avcodec_free_context(&d->jpeg);
  av_frame_free(&d->frame);
  av_frame_free(&d->next);
  av_frame_free(&d->out);
  av_packet_free(&d->pkt);
  av_packet_free(&d->jpeg_pkt);
  avfilter_graph_free(&d->graph);
  av_free(d->chain);
  av_free(d);
}

/**
 * A decoder for `stream` of `in`, with the stream's parameters (extradata included); one thread.
 * AV1 decodes with dav1d. NULL on failure (vx_error()).
 */
EMSCRIPTEN_KEEPALIVE VxDecoder *vx_decoder_open(VxInput *in, int stream) {
  if (stream < 0 || stream >= (int)in->fmt->nb_streams) {
    snprintf(error_text, sizeof(error_text), "no stream %d", stream);
    return NULL;
  }
  AVStream *st = in->fmt->streams[stream];
  const AVCodec *codec = st->codecpar->codec_id == AV_CODEC_ID_AV1
                             ? avcodec_find_decoder_by_name("libdav1d")
                             : avcodec_find_decoder(st->codecpar->codec_id);
  if (!codec) {
    const AVCodecDescriptor *desc = avcodec_descriptor_get(st->codecpar->codec_id);
    snprintf(error_text, sizeof(error_text), "Decoder (codec %s) not found",
             desc ? desc->name : "unknown");
    return NULL;
  }
  VxDecoder *d = av_mallocz(sizeof(*d));
  int ret = AVERROR(ENOMEM);
  if (!d) return NULL;
  d->ctx = avcodec_alloc_context3(codec);
  d->frame = av_frame_alloc();
  d->next = av_frame_alloc();
  d->out = av_frame_alloc();
  d->pkt = av_packet_alloc();
  if (!d->ctx || !d->frame || !d->next || !d->out || !d->pkt) goto failed;
  if ((ret = avcodec_parameters_to_context(d->ctx, st->codecpar)) < 0) goto failed;
  d->ctx->pkt_timebase = st->time_base;
  d->ctx->thread_count = 1;
  logging_decoder = d->ctx;
  if ((ret = avcodec_open2(d->ctx, codec, NULL)) < 0) goto failed;
  return d;
failed:
  fail(ret, codec->name);
  vx_decoder_close(d);
  return NULL;
}

/**
 * Sends one packet (`data` NULL: the end, to drain what the decoder holds). Returns 0, or <0 with
 * vx_error() (the decoder refused the packet: damaged, or not of its codec).
 */
EMSCRIPTEN_KEEPALIVE int vx_decoder_send(VxDecoder *d, const uint8_t *data, int size, double pts,
                                         double dts, int key) {
  logging_decoder = d->ctx;
  int ret;
  if (!data) {
    ret = avcodec_send_packet(d->ctx, NULL);
  } else {
    av_packet_unref(d->pkt);
    if ((ret = av_new_packet(d->pkt, size)) < 0) return fail(ret, "");
    memcpy(d->pkt->data, data, size);
    d->pkt->pts = from_ts(pts);
    d->pkt->dts = from_ts(dts);
    d->pkt->flags = key ? AV_PKT_FLAG_KEY : 0;
    ret = avcodec_send_packet(d->ctx, d->pkt);
  }
  return ret < 0 && ret != AVERROR_EOF ? fail(ret, "") : 0;
}

/**
 * Takes the next decoded frame: a view of six doubles (pts, width, height, key, picture type,
 * decode error flags), or NULL when the decoder wants more input or is drained (the frame taken
 * before then stays the one vx_convert and vx_jpeg see).
 */
EMSCRIPTEN_KEEPALIVE const double *vx_decoder_receive(VxDecoder *d) {
  logging_decoder = d->ctx;
  av_frame_unref(d->next);
  int ret = avcodec_receive_frame(d->ctx, d->next);
  if (ret < 0) {
    if (ret != AVERROR(EAGAIN) && ret != AVERROR_EOF) fail(ret, "");
    return NULL;
  }
  av_frame_unref(d->frame);
  av_frame_move_ref(d->frame, d->next);
  AVFrame *f = d->frame;
  d->info[0] = ts(f->best_effort_timestamp);
  d->info[1] = f->width;
  d->info[2] = f->height;
  d->info[3] = f->key_frame;
  d->info[4] = f->pict_type;
  d->info[5] = f->decode_error_flags | ((f->flags & AV_FRAME_FLAG_CORRUPT) ? 0x100 : 0);
  return d->info;
}

/** Forgets every reference picture and any drain: the next packet starts afresh. */
EMSCRIPTEN_KEEPALIVE void vx_decoder_flush(VxDecoder *d) { avcodec_flush_buffers(d->ctx); }

/* ---- conversion ----------------------------------------------------------------------------- */

static int build_graph(VxDecoder *d, const char *chain) {
  AVFrame *f = d->frame;
  avfilter_graph_free(&d->graph);
  av_freep(&d->chain);
  AVFilterInOut *outputs = avfilter_inout_alloc(), *inputs = avfilter_inout_alloc();
  int ret = AVERROR(ENOMEM);
  d->graph = avfilter_graph_alloc();
  if (!outputs || !inputs || !d->graph) goto done;
  /* As ffmpeg's command line: conversions the chain does not ask for scale bicubically. */
  d->graph->scale_sws_opts = av_strdup("flags=bicubic");
  d->graph->nb_threads = 1;
  char args[256];
  AVRational sar = f->sample_aspect_ratio.num ? f->sample_aspect_ratio : (AVRational){0, 1};
  AVRational tb = d->ctx->pkt_timebase.num ? d->ctx->pkt_timebase : (AVRational){1, 1};
  snprintf(args, sizeof(args), "video_size=%dx%d:pix_fmt=%d:time_base=%d/%d:pixel_aspect=%d/%d",
           f->width, f->height, f->format, tb.num, tb.den, sar.num, sar.den);
  if ((ret = avfilter_graph_create_filter(&d->src, avfilter_get_by_name("buffer"), "in", args,
                                          NULL, d->graph)) < 0 ||
      (ret = avfilter_graph_create_filter(&d->sink, avfilter_get_by_name("buffersink"), "out",
                                          NULL, NULL, d->graph)) < 0)
    goto done;
  outputs->name = av_strdup("in");
  outputs->filter_ctx = d->src;
  inputs->name = av_strdup("out");
  inputs->filter_ctx = d->sink;
  if ((ret = avfilter_graph_parse_ptr(d->graph, chain, &inputs, &outputs, NULL)) < 0 ||
      (ret = avfilter_graph_config(d->graph, NULL)) < 0)
    goto done;
  d->chain = av_strdup(chain);
  d->gw = f->width;
  d->gh = f->height;
  d->gfmt = f->format;
done:
  avfilter_inout_free(&inputs);
  avfilter_inout_free(&outputs);
  if (ret < 0) avfilter_graph_free(&d->graph);
  return ret;
}

/* Runs the frame just received through `chain` into d->out. */
static int filter(VxDecoder *d, const char *chain) {
  AVFrame *f = d->frame;
  int ret;
  if (!d->graph || strcmp(d->chain, chain) || d->gw != f->width || d->gh != f->height ||
      d->gfmt != f->format) {
    if ((ret = build_graph(d, chain)) < 0) return fail(ret, "filters");
  }
  if ((ret = av_buffersrc_write_frame(d->src, f)) < 0) return fail(ret, "filters");
  av_frame_unref(d->out);
  if ((ret = av_buffersink_get_frame(d->sink, d->out)) < 0) return fail(ret, "filters");
  return 0;
}

/**
 * Converts the frame just received through the filter `chain` ("scale=...,format=gbrp,pad=...")
 * and copies the result into `out` (`size` bytes), its planes one after the other, no padding.
 * Returns the bytes written, or <0 (vx_error()).
 */
EMSCRIPTEN_KEEPALIVE int vx_convert(VxDecoder *d, const char *chain, uint8_t *out, int size) {
  int ret = filter(d, chain);
  if (ret < 0) return ret;
  AVFrame *o = d->out;
  int need = av_image_get_buffer_size(o->format, o->width, o->height, 1);
  if (need > size) {
    snprintf(error_text, sizeof(error_text), "filters: %dx%d %s needs %d bytes, not %d", o->width,
             o->height, av_get_pix_fmt_name(o->format), need, size);
    return AVERROR(EINVAL);
  }
  ret = av_image_copy_to_buffer(out, size, (const uint8_t *const *)o->data, o->linesize,
                                o->format, o->width, o->height, 1);
  return ret < 0 ? fail(ret, "copy") : ret;
}

/** The size of the last conversion's picture: width * 65536 + height. */
EMSCRIPTEN_KEEPALIVE int vx_converted_size(VxDecoder *d) {
  return d->out->width * 65536 + d->out->height;
}

/**
 * Encodes the frame just received as a JPEG (through `chain`, which ends in format=yuvj420p),
 * standard Huffman tables, quality 3. Returns its size (vx_jpeg_data() points at it), or <0.
 */
EMSCRIPTEN_KEEPALIVE int vx_jpeg(VxDecoder *d, const char *chain) {
  int ret = filter(d, chain);
  if (ret < 0) return ret;
  AVFrame *o = d->out;
  if (d->jpeg && (d->jpeg->width != o->width || d->jpeg->height != o->height))
    avcodec_free_context(&d->jpeg);
  if (!d->jpeg) {
    const AVCodec *mjpeg = avcodec_find_encoder(AV_CODEC_ID_MJPEG);
    if (!mjpeg || !(d->jpeg = avcodec_alloc_context3(mjpeg))) return fail(AVERROR(ENOMEM), "jpeg");
    d->jpeg->width = o->width;
    d->jpeg->height = o->height;
    d->jpeg->pix_fmt = o->format;
    d->jpeg->time_base = (AVRational){1, 25};
    d->jpeg->flags |= AV_CODEC_FLAG_QSCALE;
    d->jpeg->global_quality = 3 * FF_QP2LAMBDA;
    AVDictionary *opts = NULL;
    av_dict_set(&opts, "huffman", "default", 0);
    ret = avcodec_open2(d->jpeg, mjpeg, &opts);
    av_dict_free(&opts);
    if (ret < 0) {
      avcodec_free_context(&d->jpeg);
      return fail(ret, "jpeg");
    }
  }
  if (!d->jpeg_pkt && !(d->jpeg_pkt = av_packet_alloc())) return fail(AVERROR(ENOMEM), "jpeg");
  o->pts = d->jpegs++;
  o->quality = d->jpeg->global_quality;
  o->pict_type = AV_PICTURE_TYPE_NONE;
  av_packet_unref(d->jpeg_pkt);
  if ((ret = avcodec_send_frame(d->jpeg, o)) < 0 ||
      (ret = avcodec_receive_packet(d->jpeg, d->jpeg_pkt)) < 0)
    return fail(ret, "jpeg");
  return d->jpeg_pkt->size;
}

/** The bytes of the last JPEG. */
EMSCRIPTEN_KEEPALIVE const uint8_t *vx_jpeg_data(VxDecoder *d) { return d->jpeg_pkt->data; }

/**
 * The filters that turn `stream`'s pictures upright, as ffmpeg's command line inserts them from
 * the display matrix ("" when upright; each ends in a comma).
 */
EMSCRIPTEN_KEEPALIVE const char *vx_upright(VxInput *in, int stream) {
  const int32_t *m = (const int32_t *)av_stream_get_side_data(in->fmt->streams[stream],
                                                               AV_PKT_DATA_DISPLAYMATRIX, NULL);
  double theta = m ? -round(av_display_rotation_get(m)) : 0;
  theta -= 360 * floor(theta / 360 + 0.9 / 360);
  if (!m) return "";
  if (fabs(theta - 90) < 1.0) return m[3] > 0 ? "transpose=cclock_flip," : "transpose=clock,";
  if (fabs(theta - 180) < 1.0) {
    if (m[0] < 0 && m[4] < 0) return "hflip,vflip,";
    return m[0] < 0 ? "hflip," : m[4] < 0 ? "vflip," : "";
  }
  if (fabs(theta - 270) < 1.0) return m[3] < 0 ? "transpose=clock_flip," : "transpose=cclock,";
  if (fabs(theta) < 1.0 && m[4] < 0) return "vflip,";
  return "";
}
