/* test_cli: the real `inferd tokenize` / `inferd detokenize` executables over JSON
 * lines: answers equal HF's refs, a malformed line gets a JSON error line while the
 * other lines are still answered, and the exit status reports the failure. Also every
 * subcommand's --help, --version, the messages for a missing model directory, a missing file
 * and an unsupported model_type or task, and `inferd run` / `inferd bench` on the generation
 * fixtures (gpt2-lm, llama-lm, t5-s2s; outputs from their refs-dev.json). */
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "loader/files.h"
#include "ops/dnnl.h"
#include "suites.h"
#include "support/support.h"

START_TEST(tokenize_lines)
{
    char args[1024];
    snprintf(args, sizeof args, "tokenize --tokenizer '%s'", fixture_tokenizer("bert-uncased"));
    int status;
    json_t *out = run_cli(args,
                          "{\"text\": \"Hello world!\"}\n"
                          "{\"text\": 42}\n"
                          "not json\n"
                          "{\"text\": \"who founded apple?\", \"pair\": \"Apple Inc.\"}\n",
                          &status);
    ck_assert_int_eq(status, 1);
    ck_assert_uint_eq(json_array_size(out), 4);
    /* refs-dev.json entry 0 of bert-uncased */
    json_t *want = json_loads("{\"ids\": [101, 7592, 2088, 999, 102],"
                              " \"tokens\": [\"[CLS]\", \"hello\", \"world\", \"!\", \"[SEP]\"],"
                              " \"offsets\": [[0, 0], [0, 5], [6, 11], [11, 12], [0, 0]],"
                              " \"type_ids\": [0, 0, 0, 0, 0]}",
                              0, NULL);
    json_t *got = json_array_get(out, 0);
    const char *key;
    json_t *v;
    json_object_foreach(want, key, v)
    {
        ck_assert_msg(json_equal(json_object_get(got, key), v), "field %s differs", key);
    }
    ck_assert_ptr_nonnull(json_object_get(json_array_get(out, 1), "error"));
    ck_assert_ptr_nonnull(json_object_get(json_array_get(out, 2), "error"));
    /* the pair after the bad lines is still answered: pairs-dev.json question ids */
    json_t *pair_ids = json_object_get(json_array_get(out, 3), "ids");
    ck_assert_int_eq(json_integer_value(json_array_get(pair_ids, 1)), 2040);
    ck_assert_int_eq(json_integer_value(json_array_get(pair_ids, 5)), 102);
    ck_assert_int_eq(json_integer_value(json_array_get(pair_ids, 6)), 6207);
    json_decref(want);
    json_decref(out);
}
END_TEST

START_TEST(tokenize_no_special_and_good_exit)
{
    char args[1024];
    snprintf(args, sizeof args, "tokenize --no-special --tokenizer '%s'",
             fixture_tokenizer("gpt2"));
    int status;
    json_t *out = run_cli(args, "{\"text\": \"Hello, <mask> world\"}\n", &status);
    ck_assert_int_eq(status, 0);
    json_t *want = json_loads("[15496, 11, 1279, 27932, 29, 995]", 0, NULL);
    ck_assert(json_equal(json_object_get(json_array_get(out, 0), "ids"), want));
    json_decref(want);
    json_decref(out);
}
END_TEST

START_TEST(detokenize_lines)
{
    char args[1024];
    snprintf(args, sizeof args, "detokenize --tokenizer '%s'", fixture_tokenizer("bert-uncased"));
    int status;
    json_t *out = run_cli(args,
                          "{\"ids\": [101, 7592, 2088, 999, 102]}\n"
                          "{\"ids\": [\"x\"]}\n"
                          "{\"ids\": [7592]}\n",
                          &status);
    ck_assert_int_eq(status, 1);
    ck_assert_uint_eq(json_array_size(out), 3);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(out, 0), "text")),
                     "hello world!");
    ck_assert_ptr_nonnull(json_object_get(json_array_get(out, 1), "error"));
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(out, 2), "text")), "hello");
    json_decref(out);
}
END_TEST

START_TEST(bad_tokenizer_dir)
{
    int status;
    json_t *out =
        run_cli("tokenize --tokenizer /nonexistent 2>/dev/null", "{\"text\": \"a\"}\n", &status);
    ck_assert_int_ne(status, 0);
    json_decref(out);
    out = run_cli("tokenize 2>/dev/null", "", &status);
    ck_assert_int_eq(status, 2);
    json_decref(out);
}
END_TEST

/* ---- the whole output of a command ---- */

struct ran {
    int status;
    char *out, *err; /* stdout and stderr, whole */
};

/* `inferd ARGS` with input on stdin; stdout and stderr kept apart. */
static struct ran run_inferd(const char *args, const char *input)
{
    const char *dir = temp_dir();
    char in[512], out[512], err[512], cmd[4096];
    snprintf(in, sizeof in, "%s/in", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(err, sizeof err, "%s/err", dir);
    FILE *f = fopen(in, "wb");
    ck_assert_ptr_nonnull(f);
    fputs(input, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "'%s' %s < '%s' > '%s' 2> '%s'", inferd_exe(), args, in, out, err);
    int rc = system(cmd);
    struct ran r = {.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1};
    r.out = read_file(out, NULL);
    r.err = read_file(err, NULL);
    ck_assert(r.out && r.err);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
    return r;
}

static void ran_free(struct ran *r)
{
    free(r->out);
    free(r->err);
}

static void expect_has(const char *text, const char *want, const char *what)
{
    ck_assert_msg(strstr(text, want) != NULL, "%s: no '%s' in:\n%s", what, want, text);
}

/* A linked copy of fixture model src_name under a fresh temp dir (model_link_copy). */
static const char *model_copy(const char *src_name, const char *drop, const char *type)
{
    return model_link_copy(temp_dir(), src_name, src_name, drop, type);
}

/* Removes a model_copy (and its temp dir). */
static void copy_free(const char *dir)
{
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "rm -rf \"$(dirname '%s')\"", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* ---- --help and --version ---- */

START_TEST(help_every_command)
{
    static const struct {
        const char *args, *usage;
        const char *options[4];
        bool tasks;
    } cases[] = {
        {"--help", "usage: inferd COMMAND", {"serve", "run", "bench", "version"}, true},
        {"-h", "usage: inferd COMMAND", {"tokenize", "detokenize", "help"}, true},
        {"help", "usage: inferd COMMAND", {"serve", "run"}, true},
        {"serve --help", "usage: inferd serve", {"--config", "--model", "--max-batch-size"}, true},
        {"serve -h", "usage: inferd serve", {"--workers", "--threads", "allow_partial_start"},
         true},
        {"run --help", "usage: inferd run", {"--model", "--task", "--batch", "--dtype"}, true},
        {"run -h", "usage: inferd run", {"--threads", "generated_text"}, true},
        {"bench --help", "usage: inferd bench", {"--min-seconds", "--seq", "--steps", "--batch"},
         false},
        {"tokenize --help", "usage: inferd tokenize", {"--tokenizer", "--no-special", "--pair"},
         false},
        {"detokenize -h", "usage: inferd detokenize", {"--tokenizer", "--keep-special"}, false},
        {"version --help", "usage: inferd version", {"--version", "-V"}, false},
        {"help run", "usage: inferd run", {"--batch"}, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct ran r = run_inferd(cases[i].args, "");
        ck_assert_msg(r.status == 0, "inferd %s: exit %d; stderr:\n%s", cases[i].args, r.status,
                      r.err);
        ck_assert_msg(strncmp(r.out, cases[i].usage, strlen(cases[i].usage)) == 0,
                      "inferd %s:\n%s", cases[i].args, r.out);
        for (size_t k = 0; k < 4 && cases[i].options[k]; k++)
            expect_has(r.out, cases[i].options[k], cases[i].args);
        if (cases[i].tasks)
            expect_has(r.out,
                       "tasks: text-classification, token-classification, question-answering, "
                       "fill-mask, zero-shot-classification, feature-extraction, "
                       "sentence-embeddings, text-generation, text2text-generation, summarization, "
                       "translation\n",
                       cases[i].args);
        ran_free(&r);
    }
    /* an unknown command or topic: exit 2 */
    struct ran r = run_inferd("help nosuch", "");
    ck_assert_int_eq(r.status, 2);
    ran_free(&r);
    r = run_inferd("nosuch", "");
    ck_assert_int_eq(r.status, 2);
    expect_has(r.err, "inferd: unknown command 'nosuch'", "inferd nosuch");
    ran_free(&r);
}
END_TEST

START_TEST(version_fields)
{
    static const char *const forms[] = {"--version", "-V", "version"};
    for (size_t i = 0; i < 3; i++) {
        struct ran r = run_inferd(forms[i], "");
        ck_assert_msg(r.status == 0, "inferd %s: exit %d", forms[i], r.status);
        /* meson.build's project version */
        ck_assert_msg(strncmp(r.out, "inferd 0.1.0\n", 13) == 0, "%s", r.out);
        static const char *const fields[] = {"\ngit revision: ", "\noneDNN: 2.",
                                             "\ncpu isa: ", "\nnative dtypes: fp32"};
        for (size_t k = 0; k < 4; k++)
            expect_has(r.out, fields[k], forms[i]);
        /* the revision: git describe's hash (this is a git checkout), not empty */
        const char *rev = strstr(r.out, "git revision: ") + strlen("git revision: ");
        ck_assert_msg(rev[0] != '\n' && strncmp(rev, "unknown", 7) != 0, "%s", r.out);
        /* the ISA the engine reports (bench's "onednn" field) */
        char isa[80];
        snprintf(isa, sizeof isa, "cpu isa: %s\n", strrchr(dnn_describe(), ' ') + 1);
        expect_has(r.out, isa, forms[i]);
        /* bf16 is named native exactly when oneDNN's ISA has bf16 instructions */
        bool bf16 = strstr(dnn_describe(), "bf16") || strstr(dnn_describe(), "amx");
        ck_assert_int_eq(strstr(r.out, "native dtypes: fp32 bf16") != NULL, bf16);
        ran_free(&r);
    }
}
END_TEST

/* `make help` names every target of the Makefile, one line each. */
START_TEST(make_help_lists_every_target)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "make -s --no-print-directory -C '%s' help", INFERD_SOURCE_DIR);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    char help[8192];
    size_t n = fread(help, 1, sizeof help - 1, p);
    help[n] = '\0';
    ck_assert_int_eq(pclose(p), 0);
    char path[512];
    snprintf(path, sizeof path, "%s/Makefile", INFERD_SOURCE_DIR);
    char *mk = read_file(path, NULL);
    ck_assert_ptr_nonnull(mk);
    int targets = 0;
    char *save = NULL;
    for (char *line = strtok_r(mk, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        size_t k = strspn(line, "abcdefghijklmnopqrstuvwxyz-");
        if (k == 0 || line[k] != ':' || line[k + 1] == '=')
            continue;
        char want[80];
        snprintf(want, sizeof want, "\n  %.*s ", (int)k, line);
        ck_assert_msg(strstr(help, want) != NULL, "make help does not list '%.*s':\n%s", (int)k,
                      line, help);
        targets++;
    }
    ck_assert_int_ge(targets, 15);
    free(mk);
}
END_TEST

/* ---- what is wrong with a model, said exactly ---- */

START_TEST(run_bad_model_messages)
{
    struct ran r = run_inferd("run --model /nonexistent/inferd-model --task ner", "");
    ck_assert_int_eq(r.status, 1);
    ck_assert_str_eq(r.err, "inferd run: --model '/nonexistent/inferd-model': no such directory\n");
    ran_free(&r);

    char args[1024], want[1024];
    const char *dir = model_copy("bert-seqcls", "tokenizer.json", NULL);
    snprintf(args, sizeof args, "run --model '%s' --task text-classification", dir);
    r = run_inferd(args, "{\"inputs\": \"a\"}\n");
    ck_assert_int_eq(r.status, 1);
    snprintf(want, sizeof want,
             "inferd run: %s/tokenizer.json: no such file, nor slow-tokenizer files (vocab.txt, "
             "source.spm + vocab.json, sentencepiece.bpe.model + vocab.json, vocab.json + "
             "merges.txt, spiece.model, sentencepiece.bpe.model, spm.model, tokenizer.model)\n",
             dir);
    ck_assert_str_eq(r.err, want);
    ran_free(&r);
    copy_free(dir);

    dir = model_copy("bert-seqcls", "config.json", NULL);
    snprintf(args, sizeof args, "run --model '%s' --task text-classification", dir);
    r = run_inferd(args, "{\"inputs\": \"a\"}\n");
    ck_assert_int_eq(r.status, 1);
    snprintf(want, sizeof want, "inferd run: %s/config.json: no such file\n", dir);
    ck_assert_str_eq(r.err, want);
    ran_free(&r);
    copy_free(dir);

    /* a file where the directory should be */
    snprintf(args, sizeof args, "run --model '%s/config.json' --task ner",
             fixture_model("bert-tokcls"));
    r = run_inferd(args, "");
    ck_assert_int_eq(r.status, 1);
    snprintf(want, sizeof want, "inferd run: --model '%s/config.json': not a directory\n",
             fixture_model("bert-tokcls"));
    ck_assert_str_eq(r.err, want);
    ran_free(&r);
}
END_TEST

/* A GPT-2 relabelled phi: the model_type is named with what is supported, before any other
 * key is looked at (it used to say "missing 'intermediate_size'"); the same for an encoder
 * task, and a decoder given an encoder task. */
START_TEST(run_unsupported_model_type)
{
    static const struct {
        const char *src, *type, *task, *want;
    } cases[] = {
        {"gpt2-lm", "phi", "text-generation",
         "model_type 'phi' is not supported for text generation (supported: gpt2, llama, "
         "mistral, qwen2, qwen3, gemma, gemma2, gemma3_text, phi3, t5, mt5, bart, mbart, "
         "marian, m2m_100, pegasus)"},
        {"gpt2-lm", "phi", "text2text-generation",
         "model_type 'phi' is not supported for text generation (supported: gpt2, llama, "
         "mistral, qwen2, qwen3, gemma, gemma2, gemma3_text, phi3, t5, mt5, bart, mbart, "
         "marian, m2m_100, pegasus)"},
        {"bert-seqcls", "funnel", "text-classification",
         "model_type 'funnel' is not supported for the encoder tasks (supported: bert, roberta, "
         "xlm-roberta, camembert, distilbert, albert, electra, modernbert, mpnet, deberta-v2, "
         "llama, mistral, qwen2, qwen3, bart)"},
        {"gpt2-lm", NULL, "fill-mask",
         "model_type 'gpt2' is not supported for the encoder tasks (supported: bert, roberta, "
         "xlm-roberta, camembert, distilbert, albert, electra, modernbert, mpnet, deberta-v2, "
         "llama, mistral, qwen2, qwen3, bart)"},
        {"bert-seqcls", NULL, "text-generation",
         "model_type 'bert' is not supported for text generation (supported: gpt2, llama, "
         "mistral, qwen2, qwen3, gemma, gemma2, gemma3_text, phi3, t5, mt5, bart, mbart, "
         "marian, m2m_100, pegasus)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *dir = model_copy(cases[i].src, NULL, cases[i].type);
        char args[1024], want[1100];
        snprintf(args, sizeof args, "run --model '%s' --task %s", dir, cases[i].task);
        struct ran r = run_inferd(args, "{\"inputs\": \"a\"}\n");
        ck_assert_int_eq(r.status, 1);
        snprintf(want, sizeof want, "inferd run: %s/config.json: %s\n", dir, cases[i].want);
        ck_assert_str_eq(r.err, want);
        ran_free(&r);
        copy_free(dir);
    }
}
END_TEST

START_TEST(run_unknown_task)
{
    char args[1024];
    snprintf(args, sizeof args, "run --model '%s' --task image-to-text",
             fixture_model("bert-seqcls"));
    struct ran r = run_inferd(args, "");
    ck_assert_int_eq(r.status, 2);
    ck_assert_str_eq(r.err, "inferd run: unknown task 'image-to-text' (tasks: "
                            "text-classification, token-classification, question-answering, "
                            "fill-mask, zero-shot-classification, feature-extraction, "
                            "sentence-embeddings, text-generation, text2text-generation, "
                            "summarization, translation)\n");
    ran_free(&r);
}
END_TEST

/* An unreadable tokenizer.json and an unreadable model directory, as a user who may not read
 * them: root reads anything, so the command runs as nobody (setpriv) on a copy whose modes say
 * so. Skipped where setpriv is missing or the tests do not run as root. */
START_TEST(run_unreadable_files)
{
    if (geteuid() != 0 || system("command -v setpriv > /dev/null") != 0)
        return;
    const char *dir = temp_dir();
    char cmd[2048], want[1024];
    snprintf(cmd, sizeof cmd,
             "chmod 755 '%s' && mkdir '%s/m' && cp '%s'/* '%s/m/' && chmod 644 '%s'/m/* && "
             "chmod 000 '%s/m/tokenizer.json'",
             dir, dir, fixture_model("bert-seqcls"), dir, dir, dir);
    ck_assert_int_eq(system(cmd), 0);
    char args[1024];
    snprintf(args, sizeof args,
             "--model '%s/m' --task text-classification < /dev/null 2> '%s/err'; echo $? >> "
             "'%s/err'",
             dir, dir, dir);
    snprintf(cmd, sizeof cmd,
             "setpriv --reuid=65534 --regid=65534 --clear-groups '%s' run %s", inferd_exe(), args);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s/err", dir);
    char *err = read_file(cmd, NULL);
    snprintf(want, sizeof want, "inferd run: %s/m/tokenizer.json: permission denied\n1\n", dir);
    ck_assert_str_eq(err, want);
    free(err);
    /* the directory itself */
    snprintf(cmd, sizeof cmd, "chmod 700 '%s/m'", dir);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(cmd, sizeof cmd,
             "setpriv --reuid=65534 --regid=65534 --clear-groups '%s' run %s", inferd_exe(), args);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s/err", dir);
    err = read_file(cmd, NULL);
    snprintf(want, sizeof want, "inferd run: --model '%s/m': permission denied\n1\n", dir);
    ck_assert_str_eq(err, want);
    free(err);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* root reads any file, so a permission error is shown through files_error itself */
START_TEST(file_error_messages)
{
    struct err e = {0};
    ck_assert_int_eq(files_error("/m/tokenizer.json", EACCES, &e), ERR_IO);
    ck_assert_str_eq(e.msg, "/m/tokenizer.json: permission denied");
    ck_assert_int_eq(files_error("/m/tokenizer.json", ENOENT, &e), ERR_NOT_FOUND);
    ck_assert_str_eq(e.msg, "/m/tokenizer.json: no such file");
    ck_assert_int_eq(files_error("/m/x", EIO, &e), ERR_IO);
    ck_assert_str_eq(e.msg, "/m/x: cannot read: Input/output error");
    ck_assert_int_eq(files_check_dir(fixture_model("bert-seqcls"), "models[0].path", &e), 0);
    ck_assert_int_eq(files_check_dir("/nonexistent/m", "models[2].path", &e), ERR_NOT_FOUND);
    ck_assert_str_eq(e.msg, "models[2].path '/nonexistent/m': no such directory");
}
END_TEST

/* ---- generation ---- */

/* The refs' "pipeline" entries of gpt2-lm and llama-lm: transformers' TextGenerationPipeline
 * output for each input and parameters, line by line (a bad line in between still answered). */
START_TEST(run_text_generation)
{
    static const char *const lms[] = {"gpt2-lm", "llama-lm"};
    for (size_t k = 0; k < 2; k++) {
        json_t *refs = fixture_json(fixture_model(lms[k]), "refs-dev.json");
        const json_t *pipe = json_object_get(refs, "pipeline");
        ck_assert_int_gt(json_array_size(pipe), 0);
        size_t cap = 1 << 16, len = 0;
        char *input = malloc(cap);
        for (size_t i = 0; i < json_array_size(pipe); i++) {
            const json_t *p = json_array_get(pipe, i);
            json_t *line = json_pack("{s:O, s:O}", "inputs", json_object_get(p, "input"),
                                     "parameters", json_object_get(p, "parameters"));
            char *s = json_dumps(line, JSON_COMPACT);
            len += (size_t)snprintf(input + len, cap - len, "%s\n%s", s, i == 0 ? "{}\n" : "");
            free(s);
            json_decref(line);
        }
        char args[1024];
        snprintf(args, sizeof args, "run --task text-generation --threads 1 --model '%s'",
                 fixture_model(lms[k]));
        int status;
        json_t *out = run_cli(args, input, &status);
        ck_assert_int_eq(status, 1); /* the "{}" line */
        ck_assert_uint_eq(json_array_size(out), json_array_size(pipe) + 1);
        for (size_t i = 0, o = 0; i < json_array_size(pipe); i++, o++) {
            const json_t *want = json_object_get(json_array_get(pipe, i), "output");
            ck_assert_msg(json_equal(json_array_get(out, o), want), "%s line %zu: %s", lms[k], o,
                          json_dumps(json_array_get(out, o), 0));
            if (i == 0)
                ck_assert_ptr_nonnull(json_object_get(json_array_get(out, ++o), "error"));
        }
        json_decref(out);
        json_decref(refs);
        free(input);
    }
}
END_TEST

/* T5: Text2TextGenerationPipeline's answer is the refs' greedy_text (16 new tokens). */
START_TEST(run_text2text_generation)
{
    json_t *refs = fixture_json(fixture_model("t5-s2s"), "refs-dev.json");
    const json_t *gens = json_object_get(refs, "generations");
    size_t cap = 1 << 16, len = 0;
    char *input = malloc(cap);
    for (size_t i = 0; i < json_array_size(gens); i++) {
        const json_t *g = json_array_get(gens, i);
        json_t *line =
            json_pack("{s:O, s:{s:b, s:i}}", "inputs", json_object_get(g, "input"), "parameters",
                      "do_sample", 0, "max_new_tokens",
                      (int)json_array_size(json_object_get(g, "greedy_ids")) - 1);
        char *s = json_dumps(line, JSON_COMPACT);
        len += (size_t)snprintf(input + len, cap - len, "%s\n", s);
        free(s);
        json_decref(line);
    }
    char args[1024];
    snprintf(args, sizeof args, "run --task text2text-generation --threads 1 --model '%s'",
             fixture_model("t5-s2s"));
    int status;
    json_t *out = run_cli(args, input, &status);
    ck_assert_int_eq(status, 0);
    ck_assert_uint_eq(json_array_size(out), json_array_size(gens));
    for (size_t i = 0; i < json_array_size(gens); i++) {
        json_t *want = json_pack("[{s:O}]", "generated_text",
                                 json_object_get(json_array_get(gens, i), "greedy_text"));
        ck_assert_msg(json_equal(json_array_get(out, i), want), "line %zu: %s", i,
                      json_dumps(json_array_get(out, i), 0));
        json_decref(want);
    }
    json_decref(out);
    json_decref(refs);
    free(input);
    /* a T5 is not a text-generation model */
    snprintf(args, sizeof args, "run --task text-generation --model '%s'",
             fixture_model("t5-s2s"));
    struct ran r = run_inferd(args, "");
    ck_assert_int_eq(r.status, 1);
    expect_has(r.err, "is an encoder-decoder (T5): its task is text2text-generation", args);
    ran_free(&r);
}
END_TEST

/* Translation with language codes (tests/data/models-issue16-lang.tar.xz: an M2M100 with
 * NLLB's tokenizer, an mBART; transformers 4.57's pipeline("translation") outputs): each
 * line's src_lang / tgt_lang, or --src-lang / --tgt-lang for lines without them; unknown
 * codes answered as error lines; the flags refused where no language codes exist. */
START_TEST(run_translation_languages)
{
    const char *root = fixture_dir("models-issue16-lang.tar.xz");
    char path[900];
    snprintf(path, sizeof path, "%s/models-lang", root);
    json_t *refs = fixture_json(path, "pipelines.json");
    static const char *const names[] = {"s2s-nllb", "s2s-mbart-lang"};
    for (size_t m = 0; m < 2; m++) {
        const json_t *calls = json_object_get(json_object_get(refs, names[m]), "calls");
        size_t cap = 1 << 16, len = 0, n = 0;
        char *input = malloc(cap), *flagged = malloc(cap);
        size_t flen = 0;
        json_t *want = json_array();
        char src[32] = "", tgt[32] = "";
        for (size_t i = 0; i < json_array_size(calls); i++) {
            const json_t *c = json_array_get(calls, i);
            json_t *params = json_deep_copy(json_object_get(c, "parameters"));
            if (json_object_get(params, "return_tensors")) { /* not an inferd run output */
                json_decref(params);
                continue;
            }
            json_t *line = json_pack("{s:O, s:O}", "inputs", json_object_get(c, "input"),
                                     "parameters", params);
            char *text = json_dumps(line, JSON_COMPACT);
            len += (size_t)snprintf(input + len, cap - len, "%s\n", text);
            free(text);
            json_array_append(want, json_object_get(c, "output"));
            n++;
            /* the first pair's lines again, their languages from the flags */
            if (!src[0]) {
                snprintf(src, sizeof src, "%s",
                         json_string_value(json_object_get(params, "src_lang")));
                snprintf(tgt, sizeof tgt, "%s",
                         json_string_value(json_object_get(params, "tgt_lang")));
            }
            if (strcmp(src, json_string_value(json_object_get(params, "src_lang"))) == 0 &&
                strcmp(tgt, json_string_value(json_object_get(params, "tgt_lang"))) == 0) {
                json_object_del(params, "src_lang");
                json_object_del(params, "tgt_lang");
                text = json_dumps(line, JSON_COMPACT);
                flen += (size_t)snprintf(flagged + flen, cap - flen, "%s\n", text);
                free(text);
            }
            json_decref(line);
            json_decref(params);
        }
        ck_assert_uint_ge(n, 6);
        snprintf(path, sizeof path, "%s/models-lang/%s", root, names[m]);
        char args[2048];
        snprintf(args, sizeof args, "run --task translation --threads 1 --model '%s'", path);
        int status;
        json_t *out = run_cli(args, input, &status);
        ck_assert_int_eq(status, 0);
        ck_assert_uint_eq(json_array_size(out), n);
        for (size_t i = 0; i < n; i++)
            ck_assert_msg(json_equal(json_array_get(out, i), json_array_get(want, i)),
                          "%s line %zu: %s", names[m], i, json_dumps(json_array_get(out, i), 0));
        json_decref(out);
        /* the flags: the same answers as the lines that named the first pair */
        snprintf(args, sizeof args,
                 "run --task translation --threads 1 --model '%s' --src-lang %s --tgt-lang %s",
                 path, src, tgt);
        out = run_cli(args, flagged, &status);
        ck_assert_int_eq(status, 0);
        ck_assert_uint_ge(json_array_size(out), 2);
        for (size_t i = 0; i < json_array_size(out); i++)
            ck_assert_msg(json_equal(json_array_get(out, i), json_array_get(want, i)),
                          "%s flagged line %zu: %s", names[m], i,
                          json_dumps(json_array_get(out, i), 0));
        json_decref(out);
        /* a line's own languages win over the flags; an unknown code is an error line */
        struct ran r = run_inferd(args, "{\"inputs\": \"Hello\", \"parameters\": "
                                        "{\"src_lang\": \"xx_Zzzz\"}}\n"
                                        "{\"inputs\": \"Hello\", \"parameters\": "
                                        "{\"tgt_lang\": 7}}\n");
        ck_assert_int_eq(r.status, 1);
        expect_has(r.out, "`src_lang` 'xx_Zzzz' is not a language code", names[m]);
        expect_has(r.out, "`tgt_lang` must be a string", names[m]);
        ran_free(&r);
        json_decref(want);
        free(input);
        free(flagged);
    }
    json_decref(refs);
    /* no language codes: T5's tokenizer; and an encoder task */
    char args[1024];
    snprintf(args, sizeof args, "run --task translation --model '%s' --src-lang en",
             fixture_model("t5-s2s"));
    struct ran r = run_inferd(args, "");
    ck_assert_int_eq(r.status, 1);
    expect_has(r.err, "--src-lang is for translation with a language-code tokenizer", args);
    ran_free(&r);
    snprintf(args, sizeof args, "run --task translation --model '%s'", fixture_model("t5-s2s"));
    r = run_inferd(args, "{\"inputs\": \"Hello\", \"parameters\": {\"tgt_lang\": \"de\"}}\n");
    ck_assert_int_eq(r.status, 1);
    expect_has(r.out, "`tgt_lang` is not supported: this model's tokenizer takes no language "
                      "codes", args);
    ran_free(&r);
    snprintf(args, sizeof args, "run --task ner --model '%s' --tgt-lang de",
             fixture_model("t5-s2s"));
    r = run_inferd(args, "");
    ck_assert_int_eq(r.status, 2);
    expect_has(r.err, "--src-lang and --tgt-lang are for translation", args);
    ran_free(&r);
}
END_TEST

/* `inferd bench` on a decoder and on T5: bench-generate's prefill, ttft and decode lines. */
START_TEST(bench_generation_models)
{
    static const struct {
        const char *model, *arch;
    } cases[] = {{"gpt2-lm", "gpt2"}, {"llama-lm", "llama"}, {"t5-s2s", "t5"}};
    for (size_t i = 0; i < 3; i++) {
        char args[1024];
        snprintf(args, sizeof args,
                 "bench --model '%s' --threads 1 --seq 8 --batch 2 --steps 3 --warmup 1 "
                 "--min-runs 2 --min-seconds 0",
                 fixture_model(cases[i].model));
        int status;
        json_t *out = run_cli(args, "", &status);
        ck_assert_int_eq(status, 0);
        static const char *const metrics[] = {"prefill", "ttft", "decode"};
        ck_assert_uint_eq(json_array_size(out), 3);
        for (size_t k = 0; k < 3; k++) {
            const json_t *l = json_array_get(out, k);
            ck_assert_str_eq(json_string_value(json_object_get(l, "metric")), metrics[k]);
            ck_assert_str_eq(json_string_value(json_object_get(l, "arch")), cases[i].arch);
            ck_assert_int_eq(json_integer_value(json_object_get(l, "prompt")), 8);
            ck_assert(json_real_value(json_object_get(l, "tokens_per_s")) > 0);
        }
        const json_t *dec = json_array_get(out, 2);
        ck_assert_int_eq(json_integer_value(json_object_get(dec, "streams")), 2);
        ck_assert_int_eq(json_integer_value(json_object_get(dec, "runs")), 3);
        json_decref(out);
    }
}
END_TEST

Suite *suite_cli(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("tokenize");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, tokenize_lines);
    tcase_add_test(tc, tokenize_no_special_and_good_exit);
    tcase_add_test(tc, detokenize_lines);
    tcase_add_test(tc, bad_tokenizer_dir);
    suite_add_tcase(s, tc);
    TCase *self = tcase_create("help and messages");
    tcase_set_timeout(self, 120);
    tcase_add_test(self, help_every_command);
    tcase_add_test(self, version_fields);
    tcase_add_test(self, make_help_lists_every_target);
    tcase_add_test(self, run_bad_model_messages);
    tcase_add_test(self, run_unsupported_model_type);
    tcase_add_test(self, run_unknown_task);
    tcase_add_test(self, file_error_messages);
    tcase_add_test(self, run_unreadable_files);
    suite_add_tcase(s, self);
    TCase *gen = tcase_create("generation");
    tcase_set_timeout(gen, 300);
    tcase_add_test(gen, run_text_generation);
    tcase_add_test(gen, run_text2text_generation);
    tcase_add_test(gen, run_translation_languages);
    tcase_add_test(gen, bench_generation_models);
    suite_add_tcase(s, gen);
    return s;
}
