#pragma once
// Narrative XHTML check: FHIR R4 Narrative.div (invariants txt-1 and txt-2, narrative.html).
//
// A narrative is stored as sent and later served to viewers that render it as HTML, so it must be
// both valid FHIR XHTML and inert. checkNarrativeXhtml() parses the text as XML with libxml2
// (streaming SAX, no tree) and accepts it only if:
//  - it is well-formed XML whose single root element is an unprefixed `div` in the XHTML namespace
//    (http://www.w3.org/1999/xhtml), every element is unprefixed XHTML, and no other namespace is
//    declared;
//  - it has no DOCTYPE (so no DTD, no entity declarations), no entity references other than the
//    five predefined ones and numeric character references, no CDATA sections, no processing
//    instructions and no XML declaration; comments contain no '<' or '>' (an HTML parser ends
//    `<!-->` early, an XML parser does not);
//  - elements are the basic formatting elements of HTML 4.0 chapters 7-11 and 15 (not 9.4
//    ins/del, nothing deprecated) plus `a` and `img`, attributes those of the R4 txt-1 list plus
//    xml:lang / xml:space; no event-handler (`on*`) or other namespaced attributes;
//  - URLs (href, src, cite, longdesc, CSS url()) are relative or use http(s), ftp, mailto, tel
//    or urn; the only `data:` URLs are base64 PNG/GIF/JPEG images in `img src` and CSS url()
//    (the official R4 definitions use them); `style` holds no CSS escapes, comments, expression(),
//    @import, behavior or -moz-binding;
//  - it has some non-whitespace text or an `img` with a `src` (txt-2);
//  - it is at most kMaxNarrativeBytes long and nests at most kMaxNarrativeDepth elements.
// Nothing is ever loaded: no DTD, no external entity, no network or file access.
//
// Diagnostics name the rule and the line/column; they never quote the narrative's text, and name
// an element or attribute only when it is a known HTML name (a tag name could be patient data).
// Thread-safe: each call uses its own parser context; libxml2 is initialised once.
#include <cstddef>
#include <string>
#include <string_view>

namespace hearth::fhir {

inline constexpr size_t kMaxNarrativeBytes = 2 * 1024 * 1024;
inline constexpr int kMaxNarrativeDepth = 64;

// Empty when `div` is an acceptable narrative; otherwise what is wrong, as a sentence fragment
// such as "must not contain a <script> element (line 1, column 52)".
std::string checkNarrativeXhtml(std::string_view div);

}  // namespace hearth::fhir
