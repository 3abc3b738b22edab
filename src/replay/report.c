/*
 * report.c - writing replay results: the curve as CSV, a summary as JSON,
 * a plot as SVG, and the placements as CSV.
 *
 * The SVG is written by hand (no plotting library): two panels share the
 * policies' colours, the whole curve (arrived 0..max% against allocated
 * 0..100%) and a zoom on the region the paper's figure of merit lives in
 * (arrived 80..max%, allocated 80..100%). Each line is the mean over the
 * seeds of the allocation ratio at each whole arrived percent.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "jsonout.h"
#include "replay.h"

/* Writes s as one CSV field, quoted when it needs to be. */
static void vgp__csv_field(FILE *f, const char *s) {
  if (strpbrk(s, ",\"\n\r") == NULL) {
    fputs(s, f);
    return;
  }
  fputc('"', f);
  for (; *s != '\0'; s++) {
    if (*s == '"')
      fputc('"', f);
    fputc(*s, f);
  }
  fputc('"', f);
}

/* XML text with the five predefined entities. */
static void vgp__xml_text(FILE *f, const char *s) {
  for (; *s != '\0'; s++) {
    switch (*s) {
    case '<': fputs("&lt;", f); break;
    case '>': fputs("&gt;", f); break;
    case '&': fputs("&amp;", f); break;
    case '"': fputs("&quot;", f); break;
    case '\'': fputs("&apos;", f); break;
    default: fputc(*s, f);
    }
  }
}

static int vgp__max_pct(const struct vgp_replay_run *r) {
  if (r->n_pods == 0 || r->capacity == 0)
    return 0;
  double a = 100.0 * (double)r->arrived[r->n_pods - 1] / (double)r->capacity;
  int m = (int)floor(a + 0.5);
  return m > (int)VGP_REPLAY_BINS - 1 ? (int)VGP_REPLAY_BINS - 1 : m;
}

int vgp_replay_write_curve_csv(FILE *f, const struct vgp_replay_run *runs,
                               size_t n) {
  fprintf(f, "policy,seed,arrived_pct,alloc_pct,frag_pct\n");
  for (size_t k = 0; k < n; k++) {
    const struct vgp_replay_run *r = &runs[k];
    int max = vgp__max_pct(r);
    for (int pct = 0; pct <= max; pct++) {
      double a = vgp_replay_alloc_at(r, pct);
      if (a < 0)
        continue;
      vgp__csv_field(f, r->policy);
      fprintf(f, ",%llu,%d,%.4f,%.4f\n", (unsigned long long)r->seed, pct, a,
              vgp_replay_frag_at(r, pct));
    }
  }
  return ferror(f) ? -EIO : 0;
}

static void vgp__mean_sd(const double *v, unsigned n, double *mean, double *sd) {
  double s = 0, q = 0;
  unsigned k = 0;
  for (unsigned i = 0; i < n; i++)
    if (v[i] >= 0) {
      s += v[i];
      k++;
    }
  *mean = k > 0 ? s / k : -1;
  for (unsigned i = 0; i < n; i++)
    if (v[i] >= 0)
      q += (v[i] - *mean) * (v[i] - *mean);
  *sd = k > 1 ? sqrt(q / (k - 1)) : 0;
}

/* The mean curve of one policy over its seeds, at whole percents. */
static int vgp__mean_curve(const struct vgp_replay_run *runs, unsigned n_seeds,
                           double *curve) {
  int max = 0;
  for (unsigned s = 0; s < n_seeds; s++) {
    int m = vgp__max_pct(&runs[s]);
    if (m > max)
      max = m;
  }
  for (int pct = 0; pct <= max; pct++) {
    double v[VGP_REPLAY_SEEDS_MAX], mean, sd;
    for (unsigned s = 0; s < n_seeds; s++)
      v[s] = vgp_replay_alloc_at(&runs[s], pct);
    vgp__mean_sd(v, n_seeds, &mean, &sd);
    curve[pct] = mean;
  }
  return max;
}

int vgp_replay_write_json(FILE *f, const char *trace_name,
                          const struct vgp_replay_run *runs, unsigned n_policies,
                          unsigned n_seeds) {
  if (n_seeds > VGP_REPLAY_SEEDS_MAX)
    return -EINVAL;
  fprintf(f, "{\n  \"trace\": ");
  vgp__json_string(f, trace_name);
  fprintf(f, ",\n  \"capacity_gpu_milli\": %llu,\n  \"policies\": [\n",
          n_policies > 0 ? (unsigned long long)runs[0].capacity : 0ull);
  for (unsigned p = 0; p < n_policies; p++) {
    const struct vgp_replay_run *pr = &runs[(size_t)p * n_seeds];
    double alloc[VGP_REPLAY_SEEDS_MAX], frag[VGP_REPLAY_SEEDS_MAX];
    double secs[VGP_REPLAY_SEEDS_MAX], fin[VGP_REPLAY_SEEDS_MAX];
    double am, asd, fm, fsd, sm, ssd, finm, finsd, curve[VGP_REPLAY_BINS];
    for (unsigned s = 0; s < n_seeds; s++) {
      alloc[s] = pr[s].alloc_at_100;
      frag[s] = pr[s].frag_at_100;
      secs[s] = pr[s].seconds;
      fin[s] = pr[s].alloc_final;
    }
    vgp__mean_sd(alloc, n_seeds, &am, &asd);
    vgp__mean_sd(frag, n_seeds, &fm, &fsd);
    vgp__mean_sd(secs, n_seeds, &sm, &ssd);
    vgp__mean_sd(fin, n_seeds, &finm, &finsd);
    fprintf(f, "    {\n      \"policy\": ");
    vgp__json_string(f, pr[0].policy);
    fprintf(f, ",\n      \"seeds\": [");
    for (unsigned s = 0; s < n_seeds; s++)
      fprintf(f, "%s%llu", s ? ", " : "", (unsigned long long)pr[s].seed);
    fprintf(f, "],\n      \"alloc_pct_at_100\": {\"mean\": %.3f, \"sd\": %.3f, \"per_seed\": [",
            am, asd);
    for (unsigned s = 0; s < n_seeds; s++)
      fprintf(f, "%s%.3f", s ? ", " : "", alloc[s]);
    fprintf(f, "]},\n      \"unallocated_pct_at_100\": %.3f,\n", am >= 0 ? 100.0 - am : -1.0);
    fprintf(f, "      \"frag_pct_of_idle_at_100\": {\"mean\": %.3f, \"sd\": %.3f},\n", fm, fsd);
    fprintf(f, "      \"alloc_pct_final\": %.3f,\n", finm);
    fprintf(f, "      \"runs\": [");
    for (unsigned s = 0; s < n_seeds; s++)
      fprintf(f, "%s\n        {\"seed\": %llu, \"pods\": %u, \"failed\": %u, "
                 "\"failed_by_100\": %u, \"never_fit\": %u, \"seconds\": %.3f}",
              s ? "," : "", (unsigned long long)pr[s].seed, pr[s].n_pods, pr[s].failed,
              pr[s].failed_by_100, pr[s].failed_never, pr[s].seconds);
    fprintf(f, "\n      ],\n      \"seconds_mean\": %.3f,\n      \"curve\": [", sm);
    int max = vgp__mean_curve(pr, n_seeds, curve);
    int first = 1;
    for (int pct = 0; pct <= max; pct++) {
      if (curve[pct] < 0)
        continue;
      fprintf(f, "%s[%d, %.3f]", first ? "" : ", ", pct, curve[pct]);
      first = 0;
    }
    fprintf(f, "]\n    }%s\n", p + 1 < n_policies ? "," : "");
  }
  fprintf(f, "  ]\n}\n");
  return ferror(f) ? -EIO : 0;
}

static const char *const vgp__colors[] = {
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
    "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
};

struct vgp__panel {
  double x0, y0, w, h;             /* pixels */
  double xmin, xmax, ymin, ymax;   /* data */
};

static double vgp__px(const struct vgp__panel *p, double x) {
  return p->x0 + (x - p->xmin) / (p->xmax - p->xmin) * p->w;
}

static double vgp__py(const struct vgp__panel *p, double y) {
  return p->y0 + p->h - (y - p->ymin) / (p->ymax - p->ymin) * p->h;
}

static void vgp__svg_axes(FILE *f, const struct vgp__panel *p, double xstep,
                          double ystep, const char *title) {
  fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
             "fill=\"white\" stroke=\"#333\"/>\n", p->x0, p->y0, p->w, p->h);
  for (double x = ceil(p->xmin / xstep) * xstep; x <= p->xmax + 1e-9; x += xstep) {
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n",
            vgp__px(p, x), p->y0, vgp__px(p, x), p->y0 + p->h);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"middle\">%g</text>\n",
            vgp__px(p, x), p->y0 + p->h + 14, x);
  }
  for (double y = ceil(p->ymin / ystep) * ystep; y <= p->ymax + 1e-9; y += ystep) {
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n",
            p->x0, vgp__py(p, y), p->x0 + p->w, vgp__py(p, y));
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%g</text>\n",
            p->x0 - 5, vgp__py(p, y) + 4, y);
  }
  fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"13\" text-anchor=\"middle\">",
          p->x0 + p->w / 2, p->y0 - 8);
  vgp__xml_text(f, title);
  fprintf(f, "</text>\n");
  fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\">"
             "arrived workload (%% of GPU capacity)</text>\n",
          p->x0 + p->w / 2, p->y0 + p->h + 32);
  fprintf(f, "<text transform=\"translate(%.1f,%.1f) rotate(-90)\" font-size=\"12\" "
             "text-anchor=\"middle\">GPU allocation ratio (%%)</text>\n",
          p->x0 - 38, p->y0 + p->h / 2);
}

static void vgp__svg_line(FILE *f, const struct vgp__panel *p, const double *curve,
                          int max, const char *color) {
  int first = 1;
  fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.8\" points=\"", color);
  for (int pct = 0; pct <= max; pct++) {
    if (curve[pct] < 0 || pct < p->xmin || pct > p->xmax)
      continue;
    double y = curve[pct] < p->ymin ? p->ymin : curve[pct];
    fprintf(f, "%s%.1f,%.1f", first ? "" : " ", vgp__px(p, pct), vgp__py(p, y));
    first = 0;
  }
  fprintf(f, "\"/>\n");
}

int vgp_replay_write_svg(FILE *f, const char *title,
                         const struct vgp_replay_run *runs, unsigned n_policies,
                         unsigned n_seeds) {
  double curves[VGP_REPLAY_POLICIES_MAX][VGP_REPLAY_BINS];
  int maxes[VGP_REPLAY_POLICIES_MAX], max = 0;
  double width = 980, height = 470;

  if (n_policies > VGP_REPLAY_POLICIES_MAX || n_seeds > VGP_REPLAY_SEEDS_MAX)
    return -EINVAL;
  for (unsigned p = 0; p < n_policies; p++) {
    maxes[p] = vgp__mean_curve(&runs[(size_t)p * n_seeds], n_seeds, curves[p]);
    if (maxes[p] > max)
      max = maxes[p];
  }
  if (max < 100)
    max = 100;
  struct vgp__panel whole = {70, 40, 380, 330, 0, max, 0, 100};
  struct vgp__panel zoom = {540, 40, 380, 330, 80, max, 80, 100};

  fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
             "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
             "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\">\n"
             "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
          width, height, width, height);
  vgp__svg_axes(f, &whole, 20, 20, title);
  vgp__svg_axes(f, &zoom, 10, 5, "zoom: arrived >= 80%");
  /* The ideal: everything that arrived is allocated. */
  fprintf(f, "<polyline fill=\"none\" stroke=\"#999\" stroke-dasharray=\"4 3\" points=\""
             "%.1f,%.1f %.1f,%.1f %.1f,%.1f\"/>\n",
          vgp__px(&whole, 0), vgp__py(&whole, 0), vgp__px(&whole, 100), vgp__py(&whole, 100),
          vgp__px(&whole, max), vgp__py(&whole, 100));
  fprintf(f, "<polyline fill=\"none\" stroke=\"#999\" stroke-dasharray=\"4 3\" points=\""
             "%.1f,%.1f %.1f,%.1f %.1f,%.1f\"/>\n",
          vgp__px(&zoom, 80), vgp__py(&zoom, 80), vgp__px(&zoom, 100), vgp__py(&zoom, 100),
          vgp__px(&zoom, max), vgp__py(&zoom, 100));
  fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#555\" "
             "stroke-dasharray=\"2 2\"/>\n",
          vgp__px(&zoom, 100), zoom.y0, vgp__px(&zoom, 100), zoom.y0 + zoom.h);
  for (unsigned p = 0; p < n_policies; p++) {
    const char *color = vgp__colors[p % (sizeof(vgp__colors) / sizeof(vgp__colors[0]))];
    vgp__svg_line(f, &whole, curves[p], maxes[p], color);
    vgp__svg_line(f, &zoom, curves[p], maxes[p], color);
    double at100 = 100 < VGP_REPLAY_BINS && maxes[p] >= 100 ? curves[p][100] : -1;
    double lx = zoom.x0 + 10, ly = zoom.y0 + zoom.h - 12 - 16.0 * (n_policies - 1 - p);
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
               "stroke-width=\"3\"/>\n", lx, ly - 4, lx + 18, ly - 4, color);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\">", lx + 24, ly);
    vgp__xml_text(f, runs[(size_t)p * n_seeds].policy);
    if (at100 >= 0)
      fprintf(f, " (%.2f%% at 100%%)", at100);
    fprintf(f, "</text>\n");
  }
  fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" fill=\"#555\">mean of %u seed%s; "
             "dashed: everything arrived is allocated</text>\n",
          whole.x0, height - 12, n_seeds, n_seeds == 1 ? "" : "s");
  fprintf(f, "</svg>\n");
  return ferror(f) ? -EIO : 0;
}

int vgp_replay_write_placements(FILE *f, const struct vgp_replay_trace *t,
                                const struct vgp_replay_run *run, int header) {
  if (header)
    fprintf(f, "policy,seed,index,pod,node,gpus,milli_per_gpu,reason\n");
  for (uint32_t i = 0; i < run->n_pods; i++) {
    const struct vgp_replay_pod *pod = &t->pods[run->pod[i]];
    vgp__csv_field(f, run->policy);
    fprintf(f, ",%llu,%u,", (unsigned long long)run->seed, i);
    vgp__csv_field(f, pod->name);
    fputc(',', f);
    if (run->node[i] >= 0) {
      int first = 1;
      vgp__csv_field(f, t->nodes[run->node[i]].name);
      fputc(',', f);
      for (unsigned d = 0; d < 16; d++)
        if ((run->devmask[i] & (1u << d)) != 0) {
          fprintf(f, "%s%u", first ? "" : "-", d);
          first = 0;
        }
      fprintf(f, ",%u,\n", run->devmask[i] != 0 ? pod->gpu_milli : 0);
    } else {
      fprintf(f, ",,%u,", pod->gpu_milli);
      vgp__csv_field(f, vgp_place_reason_name((enum vgp_place_reason)run->reason[i]));
      if (run->never[i])
        fputs(" (never fits)", f);
      fputc('\n', f);
    }
  }
  return ferror(f) ? -EIO : 0;
}
