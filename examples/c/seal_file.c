/*
 * seal_file: seals an Annex-B H.264 or H.265 file with libcamseal, access unit by access
 * unit, the way camera firmware hands over its encoder's output.
 *
 *   seal_file [--h265] [--stream N] [--fps N] [--segment-seconds S] HOME INPUT OUT_DIR
 *
 * HOME is a camera home (`camseal camera init`, `camseal camera trust`); the sealed
 * segments go to OUT_DIR, and `camseal decrypt` of them gives back INPUT byte for byte.
 *
 * Each access unit is put into its own heap buffer (as an encoder's output buffer would
 * be), lent to camseal without a copy, and freed in the release callback, which camseal
 * calls from one of its threads once the unit is sealed. Build:
 *
 *   gcc -std=c11 -O2 seal_file.c $(pkg-config --cflags --libs camseal) -o seal_file
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <camseal.h>

/* What the callbacks count. The release counter is atomic: releases come from camseal's
 * worker threads. */
struct counts {
  atomic_size_t released;
  size_t segments;
  size_t frames;
  bool failed;
};

static void on_segment(void *user_data, const camseal_segment *segment) {
  struct counts *counts = user_data;
  counts->segments++;
  counts->frames += segment->frames;
  printf("sealed segment %llu: %llu frames, %llu bytes -> %s\n",
         (unsigned long long)segment->seq, (unsigned long long)segment->frames,
         (unsigned long long)segment->bytes, segment->path);
}

static void on_error(void *user_data, camseal_status status, const char *message) {
  struct counts *counts = user_data;
  if (status == CAMSEAL_WARN_FRAMES_DROPPED) {
    fprintf(stderr, "warning: %s\n", message);
  } else {
    fprintf(stderr, "error (%d): %s\n", (int)status, message);
    counts->failed = true;
  }
}

/* camseal is done with `data`: give the buffer back (here: free it). */
static void release(void *user_data, const uint8_t *data) {
  struct counts *counts = user_data;
  free((void *)data);
  atomic_fetch_add(&counts->released, 1);
}

/* Offset of the next start code (00 00 01) at or after `from`, or `len`. */
static size_t next_start_code(const uint8_t *p, size_t len, size_t from) {
  for (size_t i = from; i + 3 <= len; i++) {
    if (p[i] == 0 && p[i + 1] == 0 && p[i + 2] == 1) return i;
  }
  return len;
}

/* Whether the NAL unit whose header starts at `nal` (with `avail` bytes) begins a new access
 * unit once the current one holds a picture, and whether it is a picture (VCL) / keyframe. */
static void classify(bool h265, const uint8_t *nal, size_t avail, bool *starts_au, bool *vcl,
                     bool *key) {
  *starts_au = *vcl = *key = false;
  if (avail < 3) return;
  if (!h265) {
    int type = nal[0] & 0x1f;
    *vcl = type >= 1 && type <= 5;
    *key = type == 5;
    /* A slice with first_mb_in_slice == 0 (ue(v) "1") starts a picture; SEI, SPS, PPS and
     * the access unit delimiter come before the first slice of one. */
    *starts_au = (*vcl && (nal[1] & 0x80)) || type == 6 || type == 7 || type == 8 || type == 9;
  } else {
    int type = (nal[0] >> 1) & 0x3f;
    *vcl = type <= 31;
    *key = type >= 16 && type <= 23;
    /* first_slice_segment_in_pic_flag; VPS, SPS, PPS, AUD and prefix SEI. */
    *starts_au = (*vcl && (nal[2] & 0x80)) || (type >= 32 && type <= 35) || type == 39;
  }
}

static int usage(void) {
  fprintf(stderr,
          "usage: seal_file [--h265] [--stream N] [--fps N] [--segment-seconds S] HOME INPUT "
          "OUT_DIR\n");
  return 2;
}

int main(int argc, char **argv) {
  bool h265 = false;
  unsigned stream = 0, fps = 25;
  double segment_seconds = 1.0;
  int arg = 1;
  for (; arg < argc && strncmp(argv[arg], "--", 2) == 0; arg++) {
    if (strcmp(argv[arg], "--h265") == 0) {
      h265 = true;
    } else if (strcmp(argv[arg], "--stream") == 0 && arg + 1 < argc) {
      stream = (unsigned)strtoul(argv[++arg], NULL, 10);
    } else if (strcmp(argv[arg], "--fps") == 0 && arg + 1 < argc) {
      fps = (unsigned)strtoul(argv[++arg], NULL, 10);
    } else if (strcmp(argv[arg], "--segment-seconds") == 0 && arg + 1 < argc) {
      segment_seconds = strtod(argv[++arg], NULL);
    } else {
      return usage();
    }
  }
  if (argc - arg != 3 || fps == 0) return usage();
  const char *home = argv[arg], *input = argv[arg + 1], *out_dir = argv[arg + 2];

  FILE *f = fopen(input, "rb");
  if (!f) {
    perror(input);
    return 1;
  }
  uint8_t *file = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len == cap) {
      cap = cap ? cap * 2 : 1 << 16;
      uint8_t *grown = realloc(file, cap);
      if (!grown) {
        fprintf(stderr, "out of memory\n");
        free(file);
        fclose(f);
        return 1;
      }
      file = grown;
    }
    size_t got = fread(file + len, 1, cap - len, f);
    if (got == 0) break;
    len += got;
  }
  fclose(f);

  printf("libcamseal %s\n", camseal_version());
  struct counts counts = {0};
  camseal_options options;
  camseal_options_init(&options);
  options.home = home;
  options.out_dir = out_dir;
  options.codec = h265 ? CAMSEAL_CODEC_H265 : CAMSEAL_CODEC_H264;
  options.stream_id = stream;
  options.segment_seconds = segment_seconds;
  options.frame_duration_90khz = 90000 / fps;
  options.on_segment = on_segment;
  options.on_error = on_error;
  options.user_data = &counts;

  camseal_session *session = NULL;
  if (camseal_open(&options, &session) != CAMSEAL_OK) {
    fprintf(stderr, "camseal_open: %s\n", camseal_last_error());
    free(file);
    return 1;
  }

  /* Cut the file into access units: each begins with the start code of its first NAL unit
   * (a 4-byte one included), so the units put back together are the file. */
  size_t pushed = 0, au_start = 0;
  bool au_has_picture = false, au_key = false;
  size_t at = next_start_code(file, len, 0);
  int status = CAMSEAL_OK;
  while (status == CAMSEAL_OK && au_start < len) {
    size_t nal_begin = at, header = at + 3;
    if (nal_begin > au_start && file[nal_begin - 1] == 0) nal_begin--;
    bool starts_au = false, vcl = false, key = false;
    if (at < len) classify(h265, file + header, len - header, &starts_au, &vcl, &key);
    bool end = at >= len;
    if (end || (starts_au && au_has_picture)) {
      size_t au_end = end ? len : nal_begin;
      size_t au_len = au_end - au_start;
      uint8_t *buffer = malloc(au_len);
      if (!buffer) {
        fprintf(stderr, "out of memory\n");
        status = -1;
        break;
      }
      memcpy(buffer, file + au_start, au_len);
      uint64_t pts = (uint64_t)pushed * (90000 / fps);
      status = camseal_push(session, buffer, au_len, pts, au_key, release, &counts);
      if (status != CAMSEAL_OK) fprintf(stderr, "camseal_push: %s\n", camseal_last_error());
      pushed++;
      au_start = au_end;
      au_has_picture = au_key = false;
      if (end) break;
    }
    au_has_picture |= vcl;
    au_key |= key;
    at = next_start_code(file, len, header);
  }
  free(file);

  if (camseal_close(session) != CAMSEAL_OK) {
    fprintf(stderr, "camseal_close: %s\n", camseal_last_error());
    status = -1;
  }
  camseal_free(session);

  size_t released = atomic_load(&counts.released);
  printf("%zu access units pushed, %zu released, %zu frames in %zu segments\n", pushed, released,
         counts.frames, counts.segments);
  if (released != pushed) {
    fprintf(stderr, "%zu buffers were not released\n", pushed - released);
    return 1;
  }
  return status == CAMSEAL_OK && !counts.failed ? 0 : 1;
}
