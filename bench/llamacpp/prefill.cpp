// llama.cpp peer for the conversation prefill benchmark.
//
// Measures prompt tokens/s of computing the final hidden state of every prompt
// token (embedding mode: embeddings on, pooling NONE) for chat conversations,
// through llama.h's C API on the CPU backend. Token ids come pre-tokenised
// (nothing is re-tokenised and no BOS is added). Two modes, each timed as the
// wall time of the whole workload (every prompt of every conversation), run N
// times after one warm-up prompt, for each thread count of --threads:
//   per prompt: every prompt is one llama_decode from an empty KV cache;
//   kv reuse:   within a conversation the KV cache of the previous prompt is
//               kept, only the tokens after the longest common prefix are
//               decoded (a new conversation starts from an empty cache).
// The rate is sum(len(prompt)) over all turns / wall seconds, the same
// numerator in both modes. Before timing, the last token's hidden state of one
// prompt is compared between the two modes (relative L2).
//
// Notes on the configuration:
// - for a decoder-only model llama.cpp's graph also applies the LM head to
//   every output token in embedding mode (logits are computed along with the
//   embeddings); that cost is part of what is measured here;
// - flash attention is off by default: the CPU flash-attention kernels round
//   through f16 along a batch-size-dependent path (tiled for >= 64 query rows,
//   per row with an f16 V accumulator below), so a prompt decoded as a short
//   suffix on a cached prefix differs from the same prompt decoded in one batch
//   by ~2% relative L2 in the final hidden state; without flash attention the
//   two modes agree exactly. --flash-attn auto is llama.cpp's default (on, on CPU);
// - ggml has no repacked/tinyBLAS GEMM for Q4_1 weights on x86: the layers'
//   matmuls run through the per-row ggml_vec_dot_q4_1_q8_1 kernel.
//
// usage: prefill <model.gguf> <prompts.json> <out.json> [--repeats N]
//                [--threads 1,2] [--flash-attn off|on|auto] [--stack TEXT] [--verbose]
// prompts.json: {"conversations": [[[ids of turn 1], [ids of turn 2], ...], ...]}

#include "llama.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

using Tokens = std::vector<llama_token>;
using Conversation = std::vector<Tokens>;

[[noreturn]] static void die(const std::string & msg) {
    fprintf(stderr, "prefill: %s\n", msg.c_str());
    exit(1);
}

// ---- input: a tiny parser for {"conversations": [[[int, ...], ...], ...]} ----

struct Parser {
    const std::string & s;
    size_t i = 0;
    void ws() { while (i < s.size() && isspace((unsigned char) s[i])) i++; }
    bool eat(char c) { ws(); if (i < s.size() && s[i] == c) { i++; return true; } return false; }
    void expect(char c) { if (!eat(c)) die(std::string("prompts: expected '") + c + "' at byte " + std::to_string(i)); }
    long integer() {
        ws();
        char * end = nullptr;
        long v = strtol(s.c_str() + i, &end, 10);
        if (end == s.c_str() + i) die("prompts: expected an integer at byte " + std::to_string(i));
        i = end - s.c_str();
        return v;
    }
    // Parses "[ item, item, ... ]" calling item() for each element.
    template <typename F> void list(F item) {
        expect('[');
        if (eat(']')) return;
        do { item(); } while (eat(','));
        expect(']');
    }
};

static std::vector<Conversation> read_prompts(const std::string & path) {
    std::ifstream f(path);
    if (!f) die("cannot open " + path);
    std::stringstream ss;
    ss << f.rdbuf();
    const std::string text = ss.str();
    const size_t key = text.find("\"conversations\"");
    if (key == std::string::npos) die("prompts: no \"conversations\" key in " + path);
    Parser p{text, key + strlen("\"conversations\"")};
    p.expect(':');
    std::vector<Conversation> convs;
    p.list([&] {
        Conversation conv;
        p.list([&] {
            Tokens toks;
            p.list([&] { toks.push_back((llama_token) p.integer()); });
            if (toks.empty()) die("prompts: empty prompt");
            conv.push_back(std::move(toks));
        });
        if (!conv.empty()) convs.push_back(std::move(conv));
    });
    if (convs.empty()) die("prompts: no conversations");
    return convs;
}

// ---- llama.cpp calls ----

struct Runner {
    llama_context * ctx;
    llama_memory_t mem;
    llama_batch batch;
    int n_embd;
    double sink = 0.0;   // consumes an output value so the work is observably used
    size_t decoded = 0;  // tokens actually run through the model

    // Decodes toks[from:] for sequence 0 at positions from.. (the cache must
    // hold exactly toks[:from]); every token's final hidden state is output.
    void decode(const Tokens & toks, size_t from) {
        batch.n_tokens = 0;
        for (size_t j = from; j < toks.size(); j++) {
            const int k = batch.n_tokens++;
            batch.token[k] = toks[j];
            batch.pos[k] = (llama_pos) j;
            batch.n_seq_id[k] = 1;
            batch.seq_id[k][0] = 0;
            batch.logits[k] = 1;
        }
        decoded += (size_t) batch.n_tokens;
        const int32_t rc = llama_decode(ctx, batch);
        if (rc != 0) die("llama_decode returned " + std::to_string(rc));
        const float * last = llama_get_embeddings_ith(ctx, -1);  // synchronises
        if (!last) die("no embeddings after llama_decode");
        sink += last[0];
    }

    // Mode a: each prompt from an empty KV cache, in one llama_decode.
    void per_prompt(const Tokens & toks) {
        llama_memory_clear(mem, /*data=*/false);
        decode(toks, 0);
    }

    // Mode b: keep the cached prefix shared with the previous prompt of the
    // conversation (`cached`), drop the rest, decode the new tail.
    void kv_reuse(Tokens & cached, const Tokens & toks) {
        size_t n = 0;
        while (n < cached.size() && n < toks.size() && cached[n] == toks[n]) n++;
        if (n == toks.size()) n--;  // always decode >= 1 token (the last one's state is wanted)
        if (!llama_memory_seq_rm(mem, 0, (llama_pos) n, -1)) {
            llama_memory_clear(mem, false);  // partial removal unsupported: start over
            n = 0;
        }
        decode(toks, n);
        cached = toks;
    }

    std::vector<float> last_embedding() const {
        const float * e = llama_get_embeddings_ith(ctx, -1);
        return std::vector<float>(e, e + n_embd);
    }
};

// ---- statistics and output ----

struct Row {
    std::string name;
    std::vector<double> runs;  // prompt tokens/s
};

static double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const size_t m = v.size() / 2;
    return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

static std::string json_str(const std::string & s) {
    std::string o = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') { o += '\\'; o += c; }
        else if ((unsigned char) c < 0x20) o += ' ';
        else o += c;
    }
    return o + "\"";
}

// "CPU : SSE3 = 1 | AVX = 1 | AVX512 = 1 | ... |" -> "SSE3 AVX AVX512 ..."
static std::string cpu_features() {
    std::string info = llama_print_system_info(), out;
    std::stringstream ss(info);
    std::string item;
    while (std::getline(ss, item, '|')) {
        const size_t eq = item.find(" = 1");
        if (eq == std::string::npos) continue;
        std::string name = item.substr(0, eq);
        name = name.substr(name.find_last_of(" :") + 1);
        out += (out.empty() ? "" : " ") + name;
    }
    return out;
}

static std::vector<int> parse_int_list(const std::string & s) {
    std::vector<int> v;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) v.push_back(std::max(1, atoi(item.c_str())));
    return v;
}

static bool g_verbose = false;

// llama.cpp's log: warnings and errors only, unless --verbose.
static void log_cb(ggml_log_level level, const char * text, void *) {
    static ggml_log_level last = GGML_LOG_LEVEL_INFO;
    if (level != GGML_LOG_LEVEL_CONT) last = level;  // CONT continues the previous line
    if (g_verbose || (last == GGML_LOG_LEVEL_WARN || last == GGML_LOG_LEVEL_ERROR)) fputs(text, stderr);
}

int main(int argc, char ** argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s <model.gguf> <prompts.json> <out.json> "
                        "[--repeats N] [--threads 1,2] [--flash-attn off|on|auto] [--stack TEXT] [--verbose]\n", argv[0]);
        return 2;
    }
    const std::string model_path = argv[1], prompts_path = argv[2], out_path = argv[3];
    int repeats = 3;
    std::vector<int> threads = {1, 2};
    std::string stack = "llama.cpp", flash_attn = "off";
    for (int a = 4; a < argc; a++) {
        const std::string arg = argv[a];
        const bool has_val = a + 1 < argc;
        if (arg == "--repeats" && has_val) repeats = std::max(1, atoi(argv[++a]));
        else if (arg == "--threads" && has_val) threads = parse_int_list(argv[++a]);
        else if (arg == "--stack" && has_val) stack = argv[++a];
        else if (arg == "--flash-attn" && has_val) flash_attn = argv[++a];
        else if (arg == "--verbose") g_verbose = true;
        else die("unknown argument " + arg);
    }

    const std::vector<Conversation> convs = read_prompts(prompts_path);
    size_t n_prompts = 0, n_tokens = 0, longest = 0;
    for (const auto & c : convs)
        for (const auto & p : c) { n_prompts++; n_tokens += p.size(); longest = std::max(longest, p.size()); }

    llama_log_set(log_cb, nullptr);
    llama_backend_init();

    llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    llama_model * model = llama_model_load_from_file(model_path.c_str(), mp);
    if (!model) die("cannot load model " + model_path);

    // One sequence; the cache, logical and physical batch all hold the longest
    // prompt, so every decode below is a single ubatch.
    const uint32_t n_ctx = (uint32_t) std::max<size_t>(1024, longest);
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = cp.n_batch = cp.n_ubatch = n_ctx;
    cp.n_seq_max = 1;
    cp.embeddings = true;                          // output hidden states ...
    cp.pooling_type = LLAMA_POOLING_TYPE_NONE;     // ... of every token, unpooled
    cp.n_threads = cp.n_threads_batch = threads.front();
    if (flash_attn == "off") cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    else if (flash_attn == "on") cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_ENABLED;
    else if (flash_attn == "auto") cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_AUTO;
    else die("--flash-attn must be off, on or auto");
    llama_context * ctx = llama_init_from_model(model, cp);
    if (!ctx) die("cannot create context");
    if (llama_pooling_type(ctx) != LLAMA_POOLING_TYPE_NONE) die("pooling type is not NONE");

    Runner r{ctx, llama_get_memory(ctx), llama_batch_init((int32_t) n_ctx, 0, 1), llama_model_n_embd(model)};

    // Correctness: the last token of a follow-up prompt, decoded from scratch
    // vs. as a suffix on the previous prompt's cache, must agree.
    size_t ci = 0;
    while (ci + 1 < convs.size() && convs[ci].size() < 2) ci++;
    const Conversation & cc = convs[ci];
    const Tokens & probe = cc[cc.size() > 1 ? 1 : 0];
    r.per_prompt(probe);
    const std::vector<float> e_full = r.last_embedding();
    Tokens cached;
    llama_memory_clear(r.mem, false);
    if (cc.size() > 1) r.kv_reuse(cached, cc[0]);
    r.kv_reuse(cached, probe);
    const std::vector<float> e_reuse = r.last_embedding();
    double num = 0, den = 0;
    for (int k = 0; k < r.n_embd; k++) {
        num += (double) (e_full[k] - e_reuse[k]) * (e_full[k] - e_reuse[k]);
        den += (double) e_full[k] * e_full[k];
    }
    const double rel_l2 = std::sqrt(num / std::max(den, 1e-30));
    printf("check: last-token hidden state, per prompt vs kv reuse (conversation %zu, turn %d, %zu tokens): "
           "relative L2 = %.3g %s\n", ci, cc.size() > 1 ? 2 : 1, probe.size(), rel_l2, rel_l2 < 1e-2 ? "OK" : "MISMATCH");

    printf("workload: %zu conversations, %zu prompts, %zu prompt tokens, longest %zu\n",
           convs.size(), n_prompts, n_tokens, longest);

    using clock = std::chrono::steady_clock;
    std::vector<Row> rows;
    size_t decoded_reuse = 0;  // tokens decoded per kv-reuse run (the rest come from the cache)
    for (const char * mode : {"per prompt", "KV reuse"}) {
        const bool reuse = strcmp(mode, "KV reuse") == 0;
        for (int nt : threads) {
            llama_set_n_threads(ctx, nt, nt);
            r.per_prompt(convs[0][0]);  // warm-up
            // Cases as bench/report.py pairs them; the thread count only when several are timed.
            std::string name = std::string("llama.cpp, ") + mode;
            if (threads.size() > 1) name += ", threads=" + std::to_string(nt);
            Row row{name, {}};
            for (int rep = 0; rep < repeats; rep++) {
                const size_t decoded0 = r.decoded;
                const auto t0 = clock::now();
                for (const auto & conv : convs) {
                    if (reuse) {
                        llama_memory_clear(r.mem, false);  // new conversation
                        cached.clear();
                        for (const auto & p : conv) r.kv_reuse(cached, p);
                    } else {
                        for (const auto & p : conv) r.per_prompt(p);
                    }
                }
                const double s = std::chrono::duration<double>(clock::now() - t0).count();
                row.runs.push_back((double) n_tokens / s);
                if (reuse) decoded_reuse = r.decoded - decoded0;
            }
            const auto mm = std::minmax_element(row.runs.begin(), row.runs.end());
            printf("%-34s median %9.1f  min %9.1f  max %9.1f  prompt tokens/s\n",
                   row.name.c_str(), median(row.runs), *mm.first, *mm.second);
            fflush(stdout);
            rows.push_back(std::move(row));
        }
    }

    // Output: write a temporary file, then rename it into place.
    const std::string full_stack = stack + ", CPU backend (" + cpu_features() + "), flash_attn=" + flash_attn;
    const std::string tmp = out_path + ".tmp";
    FILE * f = fopen(tmp.c_str(), "w");
    if (!f) die("cannot write " + tmp);
    fprintf(f, "{\n  \"bench\": \"conversation_prefill\",\n  \"stack\": %s,\n", json_str(full_stack).c_str());
    fprintf(f, "  \"workload\": {\"conversations\": %zu, \"prompts\": %zu, \"prompt_tokens\": %zu, "
               "\"decoded_tokens_kv_reuse\": %zu},\n", convs.size(), n_prompts, n_tokens, decoded_reuse);
    fprintf(f, "  \"check\": {\"name\": \"last-token hidden state, per prompt vs kv reuse, relative L2\", \"value\": %.6g},\n", rel_l2);
    fprintf(f, "  \"rows\": [\n");
    for (size_t k = 0; k < rows.size(); k++) {
        const Row & row = rows[k];
        const auto mm = std::minmax_element(row.runs.begin(), row.runs.end());
        fprintf(f, "    {\"case\": %s, \"unit\": \"prompt tokens/s\", \"median\": %.3f, \"min\": %.3f, \"max\": %.3f, \"runs\": [",
                json_str(row.name).c_str(), median(row.runs), *mm.first, *mm.second);
        for (size_t j = 0; j < row.runs.size(); j++) fprintf(f, "%s%.3f", j ? ", " : "", row.runs[j]);
        fprintf(f, "]}%s\n", k + 1 < rows.size() ? "," : "");
    }
    fprintf(f, "  ]\n}\n");
    if (fclose(f) != 0 || rename(tmp.c_str(), out_path.c_str()) != 0) die("cannot write " + out_path);
    printf("kv reuse decoded %zu of the %zu prompt tokens per run; wrote %s (sink %.3g)\n",
           decoded_reuse, n_tokens, out_path.c_str(), r.sink);

    llama_batch_free(r.batch);
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
