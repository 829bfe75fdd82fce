// JsonQuote: a string as a JSON string literal, for the JSON that nprpc
// writes by hand (HTTP error bodies, spans as JSON lines, the built-in
// pages' ?format=json), where a whole JSON library would be too much.
//
//   JsonQuote("a\tb")   // the 6 characters "a\tb" (quotes included)
//
// Control characters are escaped, and bytes that are not well-formed UTF-8
// become U+FFFD (JSON text must be UTF-8), so text from a peer is safe to
// embed.
//
// Thread safety: a pure function.
#ifndef RPC_INTERNAL_JSON_QUOTE_H_
#define RPC_INTERNAL_JSON_QUOTE_H_

#include <string>

#include "absl/strings/string_view.h"

namespace nprpc {

// `text` as a JSON string literal, quotes included.
std::string JsonQuote(absl::string_view text);

}  // namespace nprpc

#endif  // RPC_INTERNAL_JSON_QUOTE_H_
