/*
 * thumbgen's bridge to the system's libjpeg-turbo (libjpeg 6.2 API): encodes one RGB canvas.
 *
 * Written for thumbgen; built by build.rs with the machine's C compiler when <jpeglib.h> is
 * there (Debian: libjpeg62-turbo-dev), otherwise thumbgen keeps its pure-Rust encoder.
 *
 * libjpeg reports a fatal error by calling error_exit, which must not return. It jumps back
 * here with longjmp; only C frames lie between the setjmp and the longjmp, never Rust ones.
 */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

struct failure {
    struct jpeg_error_mgr manager;
    jmp_buf back;
    char *message;
    size_t message_size;
};

static void fail(j_common_ptr cinfo) {
    struct failure *failure = (struct failure *)cinfo->err;
    char text[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, text);
    snprintf(failure->message, failure->message_size, "%s", text);
    longjmp(failure->back, 1);
}

/* Warnings (e.g. a corrupt input, which an encoder never reads) are not errors: stay quiet. */
static void quiet(j_common_ptr cinfo, int level) {
    (void)cinfo;
    (void)level;
}

/* The compressed bytes, in a buffer that doubles when full (libjpeg's destination manager). */
struct sink {
    struct jpeg_destination_mgr manager;
    unsigned char *data;
    size_t capacity;
};

static void sink_start(j_compress_ptr cinfo) {
    (void)cinfo;
}

/* Called when the whole buffer is full. */
static boolean sink_grow(j_compress_ptr cinfo) {
    struct sink *sink = (struct sink *)cinfo->dest;
    size_t bigger = sink->capacity * 2;
    unsigned char *data = realloc(sink->data, bigger);
    if (data == NULL) {
        ERREXIT1(cinfo, JERR_OUT_OF_MEMORY, 0);
    }
    sink->manager.next_output_byte = data + sink->capacity;
    sink->manager.free_in_buffer = bigger - sink->capacity;
    sink->data = data;
    sink->capacity = bigger;
    return TRUE;
}

static void sink_end(j_compress_ptr cinfo) {
    (void)cinfo;
}

/*
 * Encodes `height` rows of `width` RGB pixels (`stride` bytes apart) at `quality` (1-100) with
 * every component at full resolution (4:4:4) and libjpeg's standard Huffman tables. On success
 * returns 0 and sets *out to a buffer of *out_size bytes that the caller releases with
 * thumbgen_jpeg_free. On failure returns -1 with libjpeg's message in `message` (NUL-terminated,
 * at most `message_size` bytes) and *out NULL.
 */
int thumbgen_jpeg_encode_rgb(const unsigned char *pixels, unsigned int width, unsigned int height, size_t stride,
                             int quality, unsigned char **out, size_t *out_size, char *message,
                             size_t message_size) {
    struct jpeg_compress_struct cinfo;
    struct failure failure;
    struct sink sink;

    *out = NULL;
    *out_size = 0;
    memset(&cinfo, 0, sizeof cinfo);
    /* About a quarter of the raw size: a Q90 4:4:4 thumbnail fits without growing. */
    sink.capacity = (size_t)width * height * 3 / 4 + 16384;
    sink.data = malloc(sink.capacity);
    if (sink.data == NULL) {
        snprintf(message, message_size, "out of memory for a %u x %u JPEG", width, height);
        return -1;
    }
    sink.manager.next_output_byte = sink.data;
    sink.manager.free_in_buffer = sink.capacity;
    sink.manager.init_destination = sink_start;
    sink.manager.empty_output_buffer = sink_grow;
    sink.manager.term_destination = sink_end;

    cinfo.err = jpeg_std_error(&failure.manager);
    failure.manager.error_exit = fail;
    failure.manager.emit_message = quiet;
    failure.message = message;
    failure.message_size = message_size;
    /* As libjpeg's own example does: cinfo and sink are only touched through pointers
     * libjpeg holds, so they are current when an error jumps back here. */
    if (setjmp(failure.back)) {
        jpeg_destroy_compress(&cinfo);
        free(sink.data);
        return -1;
    }
    jpeg_create_compress(&cinfo);
    cinfo.dest = &sink.manager;
    cinfo.image_width = width;
    cinfo.image_height = height;
    cinfo.input_components = 3;
    cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    for (int c = 0; c < cinfo.num_components; c++) {
        cinfo.comp_info[c].h_samp_factor = 1;
        cinfo.comp_info[c].v_samp_factor = 1;
    }
    cinfo.dct_method = JDCT_ISLOW;
    cinfo.optimize_coding = FALSE;
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)(pixels + (size_t)cinfo.next_scanline * stride);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    *out = sink.data;
    *out_size = sink.capacity - sink.manager.free_in_buffer;
    return 0;
}

void thumbgen_jpeg_free(unsigned char *buffer) {
    free(buffer);
}

/* The libjpeg-turbo release compiled against, e.g. 2001005 for 2.1.5 (0 for another libjpeg). */
long thumbgen_jpeg_version(void) {
#ifdef LIBJPEG_TURBO_VERSION_NUMBER
    return LIBJPEG_TURBO_VERSION_NUMBER;
#else
    return 0;
#endif
}
