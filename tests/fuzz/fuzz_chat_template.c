/* fuzz_chat_template: a tokenizer's chat template (chat/*.c: lexer, parser, evaluator, filters,
 * methods) compiled from untrusted bytes and rendered as the chat routes render it: a fixed
 * conversation (system, user, assistant, user) with bos/eos tokens, once with
 * add_generation_prompt and once with tools and a tool call. */
#include <jansson.h>

#include "chat/template.h"
#include "fuzz.h"

static const char messages_json[] =
    "[{\"role\": \"system\", \"content\": \"You are a helpful assistant.\"},"
    " {\"role\": \"user\", \"content\": \"What is 2+2?\"},"
    " {\"role\": \"assistant\", \"content\": \"4.\", \"tool_calls\": [{\"type\": \"function\","
    "   \"function\": {\"name\": \"add\", \"arguments\": {\"a\": 2, \"b\": 2}}}]},"
    " {\"role\": \"tool\", \"content\": \"4\"},"
    " {\"role\": \"user\", \"content\": \"And 3+3? \\u00e9\\u65e5\"}]";
static const char extra_json[] =
    "{\"add_generation_prompt\": true, \"bos_token\": \"<s>\", \"eos_token\": \"</s>\"}";
static const char tools_extra_json[] =
    "{\"add_generation_prompt\": false, \"bos_token\": \"<|begin_of_text|>\","
    " \"eos_token\": \"<|eot_id|>\", \"enable_thinking\": false,"
    " \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"add\","
    "   \"description\": \"Adds\", \"parameters\": {\"type\": \"object\","
    "   \"properties\": {\"a\": {\"type\": \"integer\"}}}}}]}";
static json_t *messages, *extras[2];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    messages = json_loads(messages_json, 0, NULL);
    extras[0] = json_loads(extra_json, 0, NULL);
    extras[1] = json_loads(tools_extra_json, 0, NULL);
    if (!messages || !extras[0] || !extras[1])
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *src = fuzz_text(data, size);
    struct chat_template *t = NULL;
    struct err e = {0};
    if (fuzz_report(chat_template_compile(src, &t, &e), &e) == 0) {
        for (int i = 0; i < 2; i++) {
            char *out = NULL;
            size_t len = 0;
            if (fuzz_report(chat_template_render(t, messages, extras[i], &out, &len, &e), &e) == 0)
                free(out);
        }
        chat_template_free(t);
    }
    free(src);
    return 0;
}
