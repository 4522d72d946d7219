#!/usr/bin/env python3
"""Three rules for the headers under include/, which compiling cannot check.

1. It includes the standard headers it uses itself. The self-containment
   build proves that each header compiles on its own, but standard headers
   include each other, so a header that uses std::optional without
   <optional> compiles today and breaks with the next compiler.
2. It leaves no macro defined but its own (TRADESTATE_...): a configuration
   macro of a library it uses (XXH_INLINE_ALL, say) is #undef'd after the
   include it configures, so that it does not change what the user's own
   includes of that library mean.
3. The umbrella tradestate/tradestate.hpp includes every public header
   (each tradestate/*.hpp but itself), as it promises.

    header_hygiene.py INCLUDE_DIR      (exit 1 and a list of what is wrong)
"""
import pathlib
import re
import sys

# facility (regular expression over the code, comments and strings removed) -> the header that declares it
FACILITIES = [
    (r"std::optional\b|std::nullopt\b", "optional"),
    (r"std::(?:basic_)?string\b(?!_view)|std::to_string\b|std::stoll?\b|std::stoull?\b", "string"),
    (r"std::string_view\b", "string_view"),
    (r"std::vector\b", "vector"),
    (r"std::(?:multi)?map\b", "map"),
    (r"std::unordered_map\b", "unordered_map"),
    (r"std::(?:multi)?set\b", "set"),
    (r"std::unordered_set\b", "unordered_set"),
    (r"std::deque\b", "deque"),
    (r"std::list\b", "list"),
    (r"std::array\b", "array"),
    (r"std::span\b", "span"),
    (r"std::function\b|std::hash\b", "functional"),
    (r"std::(?:unique_ptr|shared_ptr|weak_ptr|make_unique|make_shared|enable_shared_from_this)\b", "memory"),
    (r"std::(?:mutex|lock_guard|unique_lock|scoped_lock)\b", "mutex"),
    (r"std::condition_variable\b", "condition_variable"),
    (r"std::(?:thread|this_thread)\b", "thread"),
    (r"std::atomic\b", "atomic"),
    (r"std::chrono::", "chrono"),
    (r"std::(?:snprintf|printf|fprintf|fopen|fclose|FILE|fwrite|fread|fflush)\b", "cstdio"),
    (r"std::(?:to_chars|from_chars|chars_format)\b", "charconv"),
    (r"std::(?:convertible_to|same_as|integral|floating_point|derived_from|invocable|constructible_from)\b", "concepts"),
    (r"std::u?int(?:8|16|32|64)_t\b", "cstdint"),
    (r"std::(?:pair|move|forward|exchange|swap|declval|in_place)\b", "utility"),
    (r"std::(?:variant|visit|monostate|get_if|holds_alternative)\b", "variant"),
    (r"std::(?:tuple|tie|make_tuple)\b", "tuple"),
    (r"std::filesystem\b", "filesystem"),
    (r"std::(?:ostringstream|istringstream|stringstream)\b", "sstream"),
    (r"std::(?:ifstream|ofstream|fstream)\b", "fstream"),
    (r"std::(?:cout|cerr|clog|cin)\b", "iostream"),
    (r"std::(?:runtime_error|logic_error|invalid_argument|out_of_range|length_error|overflow_error)\b", "stdexcept"),
    (r"std::(?:exception|exception_ptr|current_exception|rethrow_exception)\b", "exception"),
    (r"std::(?:error_code|system_error|errc|generic_category|system_category)\b", "system_error"),
    (r"std::(?:memcpy|memcmp|memset|memmove|memchr|strlen|strerror|strcmp|strncmp)\b", "cstring"),
    (r"std::(?:sort|stable_sort|find|find_if|min|max|clamp|any_of|all_of|none_of|remove_if|reverse|copy|copy_n|fill|fill_n|count|count_if|lower_bound|upper_bound|equal|mismatch|max_element|min_element|search|unique)\b", "algorithm"),
    (r"std::(?:iota|accumulate)\b", "numeric"),
    (r"std::numeric_limits\b", "limits"),
    (r"std::(?:isfinite|isnan|fabs|llround|lround|round|floor|ceil|pow|sqrt|exp|log)\b", "cmath"),
    (r"std::(?:getenv|strtoll|strtoull|strtod|abort|exit|_Exit|malloc|free)\b", "cstdlib"),
    (r"std::(?:isdigit|isalnum|isalpha|isspace|isxdigit|tolower|toupper|isprint)\b", "cctype"),
    (r"std::(?:time_t|tm|gmtime|localtime|mktime|time|strftime)\b", "ctime"),
    (r"std::(?:byte|nullptr_t|max_align_t)\b", "cstddef"),
    (r"std::(?:bit_cast|endian|countl_zero|countr_zero|popcount|byteswap)\b", "bit"),
    (r"std::initializer_list\b", "initializer_list"),
    (r"std::(?:queue|priority_queue)\b", "queue"),
    (r"std::(?:is_same_v|is_integral_v|enable_if_t|decay_t|remove_cvref_t|conditional_t|is_trivially_copyable_v|underlying_type_t|is_enum_v)\b", "type_traits"),
]
# Headers that are accepted for one another: <iostream> declares the streams <ostream> would.
EQUIVALENT = {"cstdio": {"stdio.h"}, "cstring": {"string.h"}, "cstdlib": {"stdlib.h"}, "ctime": {"time.h"}}


def code_only(text: str) -> str:
    """The text without comments, string and character literals."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
        elif text.startswith('R"', i):
            m = re.match(r'R"([^(\s]*)\(', text[i:])
            if m:
                end = text.find(")" + m.group(1) + '"', i)
                i = n if end < 0 else end + len(m.group(1)) + 2
            else:
                i += 2
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(c + c)
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    root = pathlib.Path(sys.argv[1])
    headers = sorted(root.rglob("*.hpp"))
    if not headers:
        print(f"header_hygiene: no headers under {root}", file=sys.stderr)
        return 2
    problems = []
    for h in headers:
        text = h.read_text(encoding="utf-8")
        included = set(re.findall(r"^\s*#\s*include\s*<([^>]+)>", text, re.M))
        code = code_only(re.sub(r"^\s*#\s*include[^\n]*", "", text, flags=re.M))
        for name in re.findall(r"^\s*#\s*define\s+(\w+)", text, re.M):
            if not name.startswith("TRADESTATE_") and not re.search(r"^\s*#\s*undef\s+" + name + r"\b", text, re.M):
                problems.append(f"{h.relative_to(root)}: defines {name} and leaves it defined (#undef it after use)")
        for pattern, header in FACILITIES:
            m = re.search(pattern, code)
            if m and header not in included and not (EQUIVALENT.get(header, set()) & included):
                line = code[: m.start()].count("\n") + 1
                problems.append(f"{h.relative_to(root)}: uses {m.group(0)} (about line {line}) without #include <{header}>")
    umbrella = root / "tradestate" / "tradestate.hpp"
    if umbrella.exists():
        got = set(re.findall(r"^\s*#\s*include\s*<tradestate/([^>/]+\.hpp)>", umbrella.read_text(encoding="utf-8"), re.M))
        for h in sorted((root / "tradestate").glob("*.hpp")):
            if h.name != "tradestate.hpp" and h.name not in got:
                problems.append(f"tradestate/tradestate.hpp: does not include <tradestate/{h.name}>")
    for p in problems:
        print(p)
    print(f"header_hygiene: {len(headers)} headers, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
