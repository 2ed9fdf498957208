"""RFC 3261 §25 grammar, one named regex fragment per ABNF rule.

Each fragment has the RFC rule quoted above it, so a reviewer can check this
file against RFC 3261 §25 line by line (the layout is h11's ``_abnf.py``).
Fragments are ``str`` patterns: header values are decoded from UTF-8 with
``surrogateescape`` before they are matched, so "UTF8-NONASCII" below is "any
code point from U+0080 up" (a stray non-UTF-8 byte decodes to a lone surrogate
in that range and is carried through unchanged).

Whitespace: the parser unfolds header lines first (RFC 3261 §7.3.1: CRLF plus
leading whitespace is one SP), so the grammar's

    LWS  =  [*WSP CRLF] 1*WSP ; linear whitespace
    SWS  =  [LWS] ; sep whitespace

become ``[ \\t]+`` and ``[ \\t]*`` here.

Departures from the RFC are marked DEPARTURE with the reason.

Everything is compiled once, at import: the parser never compiles a pattern.
"""

from __future__ import annotations

import re

# RFC 3261 §25.1
#   alphanum  =  ALPHA / DIGIT
ALPHANUM = r"[A-Za-z0-9]"

# RFC 3261 §25.1
#   escaped     =  "%" HEXDIG HEXDIG
ESCAPED = r"%[0-9A-Fa-f]{2}"

# RFC 3261 §25.1
#   unreserved  =  alphanum / mark
#   mark        =  "-" / "_" / "." / "!" / "~" / "*" / "'" / "(" / ")"
UNRESERVED_CHARS = r"A-Za-z0-9\-_.!~*'()"

# RFC 3261 §25.1
#   token       =  1*(alphanum / "-" / "." / "!" / "%" / "*"
#                  / "_" / "+" / "`" / "'" / "~" )
TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"

# RFC 3261 §25.1
#   word        =  1*(alphanum / "-" / "." / "!" / "%" / "*" /
#                  "_" / "+" / "`" / "'" / "~" /
#                  "(" / ")" / "<" / ">" /
#                  ":" / "\" / DQUOTE /
#                  "/" / "[" / "]" / "?" /
#                  "{" / "}" )
WORD = r"[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+"

# RFC 3261 §25.1
#   quoted-string  =  SWS DQUOTE *(qdtext / quoted-pair ) DQUOTE
#   qdtext         =  LWS / %x21 / %x23-5B / %x5D-7E
#                     / UTF8-NONASCII
#   quoted-pair  =  "\" (%x00-09 / %x0B-0C
#                   / %x0E-7F)
# (SWS is left to the caller.) RFC 4475 §3.1.1.2 (intmeth) puts raw NUL, BEL
# and DEL after a backslash: legal as quoted-pairs.
QDTEXT = "[ \\t\\x21\\x23-\\x5b\\x5d-\\x7e\\x80-\\U0010ffff]"
QUOTED_PAIR = r"\\[\x00-\x09\x0b\x0c\x0e-\x7f]"
QUOTED_STRING = rf'"(?:{QDTEXT}|{QUOTED_PAIR})*"'

# RFC 3261 §25.1
#   hostname         =  *( domainlabel "." ) toplabel [ "." ]
#   domainlabel      =  alphanum
#                       / alphanum *( alphanum / "-" ) alphanum
#   toplabel         =  ALPHA / ALPHA *( alphanum / "-" ) alphanum
DOMAINLABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?"
TOPLABEL = r"[A-Za-z](?:[A-Za-z0-9\-]*[A-Za-z0-9])?"
HOSTNAME = rf"(?:{DOMAINLABEL}\.)*{TOPLABEL}\.?"

# RFC 3261 §25.1
#   IPv4address    =  1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT
# DEPARTURE: each part is limited to 0-255 (the dec-octet of RFC 3986 and the
# RFC 5954 correction), so "999.1.1.1" is not an address.
DEC_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4ADDRESS = rf"{DEC_OCTET}\.{DEC_OCTET}\.{DEC_OCTET}\.{DEC_OCTET}"

# RFC 3261 §25.1
#   IPv6reference  =  "[" IPv6address "]"
#   IPv6address    =  hexpart [ ":" IPv4address ]
# The character set is checked here; the structure (one "::", at most eight
# groups) is checked with the ipaddress module by the caller, see uri.py.
IPV6ADDRESS_CHARS = r"[0-9A-Fa-f:.]+"
IPV6REFERENCE = rf"\[{IPV6ADDRESS_CHARS}\]"

# RFC 3261 §25.1
#   host             =  hostname / IPv4address / IPv6reference
# IPv4 first: "192.0.2.1" is not a hostname (toplabel starts with ALPHA), but
# alternation order must not depend on that.
HOST = rf"(?:{IPV4ADDRESS}|{HOSTNAME}|{IPV6REFERENCE})"

# RFC 3261 §25.1
#   port           =  1*DIGIT
# DEPARTURE: at most 5 digits (the value is range-checked to 0-65535 by the caller).
PORT = r"[0-9]{1,5}"

# RFC 3261 §25.1
#   user             =  1*( unreserved / escaped / user-unreserved )
#   user-unreserved  =  "&" / "=" / "+" / "$" / "," / ";" / "?" / "/"
USER = rf"(?:[{UNRESERVED_CHARS}&=+$,;?/]|{ESCAPED})+"

# RFC 3261 §25.1
#   password         =  *( unreserved / escaped /
#                       "&" / "=" / "+" / "$" / "," )
PASSWORD = rf"(?:[{UNRESERVED_CHARS}&=+$,]|{ESCAPED})*"

# RFC 3261 §25.1
#   other-param       =  pname [ "=" pvalue ]
#   pname             =  1*paramchar
#   pvalue            =  1*paramchar
#   paramchar         =  param-unreserved / unreserved / escaped
#   param-unreserved  =  "[" / "]" / "/" / ":" / "&" / "+" / "$"
# (transport-param, user-param, ... are all special cases of other-param.)
PARAMCHARS = rf"(?:[\[\]/:&+${UNRESERVED_CHARS}]|{ESCAPED})+"

# RFC 3261 §25.1
#   header          =  hname "=" hvalue
#   hname           =  1*( hnv-unreserved / unreserved / escaped )
#   hvalue          =  *( hnv-unreserved / unreserved / escaped )
#   hnv-unreserved  =  "[" / "]" / "/" / "?" / ":" / "+" / "$"
HNAME = rf"(?:[\[\]/?:+${UNRESERVED_CHARS}]|{ESCAPED})+"
HVALUE = rf"(?:[\[\]/?:+${UNRESERVED_CHARS}]|{ESCAPED})*"

# RFC 3261 §25.1
#   scheme         =  ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
SCHEME = r"[A-Za-z][A-Za-z0-9+\-.]*"

# RFC 3261 §25.1
#   absoluteURI    =  scheme ":" ( hier-part / opaque-part )
#   opaque-part    =  uric-no-slash *uric
#   uric           =  reserved / unreserved / escaped
#   reserved    =  ";" / "/" / "?" / ":" / "@" / "&" / "=" / "+"
#                  / "$" / ","
# DEPARTURE: hier-part and opaque-part are both taken as 1*uric (every
# hier-part is a run of uric); what follows the scheme is opaque to us.
URIC_RUN = rf"(?:[;/?:@&=+$,{UNRESERVED_CHARS}]|{ESCAPED})+"

# RFC 3261 §25.1
#   SIP-Version    =  "SIP" "/" 1*DIGIT "." 1*DIGIT
# ABNF string literals are case-insensitive (RFC 3261 §7.1 says so too).
SIP_VERSION = r"[Ss][Ii][Pp]/[0-9]+\.[0-9]+"

# RFC 3261 §25.1
#   Request-Line   =  Method SP Request-URI SP SIP-Version CRLF
#   Method            =  INVITEm / ACKm / OPTIONSm / BYEm
#                        / CANCELm / REGISTERm
#                        / extension-method
#   extension-method  =  token
# The Request-URI is any run of non-whitespace here and parsed by uri.py, so
# one SP means one SP: RFC 4475 lwsstart, trws and lwsruri all fail this match.
REQUEST_LINE = rf"(?P<method>{TOKEN}) (?P<uri>[^ \t]+) (?P<version>{SIP_VERSION})"

# RFC 3261 §25.1
#   Status-Line     =  SIP-Version SP Status-Code SP Reason-Phrase CRLF
#   Status-Code     =  Informational / ... / extension-code
#   extension-code  =  3DIGIT
#   Reason-Phrase   =  *(reserved / unreserved / escaped
#                      / UTF8-NONASCII / UTF8-CONT / SP / HTAB)
# DEPARTURE: "SIP/2.0 200" without the SP before an empty reason is accepted,
# and the reason is any text (it is only ever shown to people).
STATUS_LINE = rf"(?P<version>{SIP_VERSION}) (?P<status>[0-9]{{3}})(?: (?P<reason>.*))?"

# RFC 3261 §25.1
#   message-header  =  (...) CRLF
#   extension-header  =  header-name HCOLON header-value
#   header-name       =  token
#   HCOLON  =  *( SP / HTAB ) ":" SWS
HEADER_NAME = TOKEN

# RFC 3261 §25.1
#   CSeq  =  "CSeq" HCOLON 1*DIGIT LWS Method
CSEQ = rf"(?P<number>[0-9]+)[ \t]+(?P<method>{TOKEN})"

# RFC 3261 §25.1
#   Call-ID  =  ( "Call-ID" / "i" ) HCOLON callid
#   callid   =  word [ "@" word ]
CALLID = rf"{WORD}(?:@{WORD})?"

# RFC 3261 §25.1
#   Max-Forwards  =  "Max-Forwards" HCOLON 1*DIGIT
#   Content-Length  =  ( "Content-Length" / "l" ) HCOLON 1*DIGIT
DIGITS = r"[0-9]+"

# RFC 3261 §25.1
#   Date          =  "Date" HCOLON SIP-date
#   SIP-date      =  rfc1123-date
#   rfc1123-date  =  wkday "," SP date1 SP time SP "GMT"
#   date1         =  2DIGIT SP month SP 4DIGIT
#   time          =  2DIGIT ":" 2DIGIT ":" 2DIGIT
#   wkday  =  "Mon" / "Tue" / "Wed" / "Thu" / "Fri" / "Sat" / "Sun"
#   month  =  "Jan" / "Feb" / ... / "Dec"
# RFC 4475 §3.1.2.12 (baddate): "EST" instead of "GMT" is rejected.
WKDAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
RFC1123_DATE = rf"{WKDAY}, [0-9]{{2}} {MONTH} [0-9]{{4}} [0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}} GMT"

# RFC 3261 §25.1
#   generic-param  =  token [ EQUAL gen-value ]
#   gen-value      =  token / host / quoted-string
#   SEMI    =  SWS ";" SWS ; semicolon
#   EQUAL   =  SWS "=" SWS ; equal
# host is token / IPv4 (a token too) / IPv6reference, so gen-value is one of
# three shapes. A "param" match is one ";name[=value]" step; the caller loops.
GEN_VALUE = rf"(?:{TOKEN}|{IPV6REFERENCE}|{QUOTED_STRING})"
SEMI_GENERIC_PARAM = rf"[ \t]*;[ \t]*(?P<name>{TOKEN})(?:[ \t]*=[ \t]*(?P<value>{GEN_VALUE}))?"
# The common case, every value a token: a whole run of params in one match.
SEMI_TOKEN_PARAMS = rf"(?:[ \t]*;[ \t]*{TOKEN}(?:[ \t]*=[ \t]*{TOKEN})?)*[ \t]*"

# RFC 3261 §25.1
#   display-name   =  *(token LWS)/ quoted-string
# The quoted form is QUOTED_STRING; this is the unquoted one (which RFC 4475
# §3.1.1.6 lwsdisp lets end without LWS before "<").
DISPLAY_TOKENS = rf"{TOKEN}(?:[ \t]+{TOKEN})*"

# RFC 3261 §25.1
#   via-parm          =  sent-protocol LWS sent-by *( SEMI via-params )
#   sent-protocol     =  protocol-name SLASH protocol-version
#                        SLASH transport
#   protocol-name     =  "SIP" / token
#   protocol-version  =  token
#   transport         =  "UDP" / "TCP" / "TLS" / "SCTP"
#                        / other-transport
#   other-transport   =  token
#   sent-by           =  host [ COLON port ]
#   SLASH   =  SWS "/" SWS ; slash
#   COLON   =  SWS ":" SWS ; colon
# (The params are matched with SEMI_GENERIC_PARAM in a loop.) The lookahead
# after the host stops "1.2.3.4.example.com" matching as the IPv4 "1.2.3.4".
VIA_PARM_HEAD = (
    rf"(?P<name>{TOKEN})[ \t]*/[ \t]*(?P<version>{TOKEN})[ \t]*/[ \t]*(?P<transport>{TOKEN})"
    rf"[ \t]+(?P<host>{HOST})(?![A-Za-z0-9.\-\]])(?:[ \t]*:[ \t]*(?P<port>{PORT}))?"
)

# RFC 3261 §25.1
#   via-received      =  "received" EQUAL (IPv4address / IPv6address)
# DEPARTURE: a bracketed IPv6reference is accepted too (RFC 5118 §4.5 shows
# both forms in the wild).
RECEIVED = rf"(?:{IPV4ADDRESS}|{IPV6ADDRESS_CHARS}|{IPV6REFERENCE})"
# A Via's params are generic-params, except that received may carry a bare
# IPv6address (not a gen-value: it holds ':'). One step of the Via params loop:
SEMI_VIA_PARAM = (
    rf"[ \t]*;[ \t]*(?:(?P<rname>(?i:received))[ \t]*=[ \t]*(?P<rvalue>{IPV6ADDRESS_CHARS})"
    rf"(?=[ \t]*(?:;|\Z))|(?P<name>{TOKEN})(?:[ \t]*=[ \t]*(?P<value>{GEN_VALUE}))?)"
)

# RFC 3581 §3
#   response-port = "rport" [EQUAL 1*DIGIT]
RPORT_VALUE = PORT

# --- compiled, once -------------------------------------------------------------------

TOKEN_RE = re.compile(TOKEN)
CALLID_RE = re.compile(CALLID)
CSEQ_RE = re.compile(CSEQ)
DIGITS_RE = re.compile(DIGITS)
DATE_RE = re.compile(RFC1123_DATE)
REQUEST_LINE_RE = re.compile(REQUEST_LINE)
STATUS_LINE_RE = re.compile(STATUS_LINE)
SCHEME_RE = re.compile(SCHEME)
SCHEME_COLON_RE = re.compile(rf"{SCHEME}:")
URIC_RUN_RE = re.compile(URIC_RUN)
USER_RE = re.compile(USER)
PASSWORD_RE = re.compile(PASSWORD)
HOST_RE = re.compile(HOST)
IPV4ADDRESS_RE = re.compile(IPV4ADDRESS)
IPV6REFERENCE_RE = re.compile(IPV6REFERENCE)
PORT_RE = re.compile(PORT)
PARAMCHARS_RE = re.compile(PARAMCHARS)
HNAME_RE = re.compile(HNAME)
HVALUE_RE = re.compile(HVALUE)
QUOTED_STRING_RE = re.compile(QUOTED_STRING)
QUOTED_PAIR_RE = re.compile(r"\\(.)", re.DOTALL)
#: What must be written as a quoted-pair inside a quoted-string.
QUOTE_ME_RE = re.compile(r'["\\\x00-\x08\x0b\x0c\x0e-\x1f\x7f]')
DISPLAY_TOKENS_RE = re.compile(DISPLAY_TOKENS)
GEN_VALUE_RE = re.compile(GEN_VALUE)
SEMI_GENERIC_PARAM_RE = re.compile(SEMI_GENERIC_PARAM)
SEMI_VIA_PARAM_RE = re.compile(SEMI_VIA_PARAM)
SEMI_TOKEN_PARAMS_RE = re.compile(SEMI_TOKEN_PARAMS)
VIA_PARM_HEAD_RE = re.compile(VIA_PARM_HEAD)
RECEIVED_RE = re.compile(RECEIVED)
RPORT_VALUE_RE = re.compile(RPORT_VALUE)
#: RFC 3261 §7.3.1: "the line break and the whitespace at the beginning of the
#: next line are treated as a single SP character".
FOLD_RE = re.compile(r"\r\n[ \t]+")
WHITESPACE_RE = re.compile(r"[ \t]+")

# --- fast paths -----------------------------------------------------------------------
#
# Not RFC rules: each is a strict subset of the grammar above (no IPv6, no
# quoted-pairs, no odd whitespace, ports below 60000), matched in one C-level
# call. Whatever one of these accepts, the full parser accepts too and parses
# the same way, so the parser tries them first and runs the full grammar only
# when they fail, which is where every error message still comes from.
# tests/sip/test_fastpath.py checks that subset claim with Hypothesis.


def _ci(word: str) -> str:
    """``word`` matched case-insensitively in ASCII only (RFC 3261 §7.3.1 names).

    Not ``re.IGNORECASE``: with it "[a-z]" also matches U+0130, U+0131, U+017F
    and U+212A, which are not token characters.
    """
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else re.escape(c) for c in word)


#: A port the full parser accepts without a range check (0-59999).
FAST_PORT = r"[0-9]{1,4}|[0-5][0-9]{4}"

# The rules above, each the same language, written with possessive runs (Python
# 3.11) so that the regex engine does not backtrack into them: a run of user,
# param or token characters is always followed by a character outside its class.
_FAST_TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]++"
_FAST_USER = rf"(?:[{UNRESERVED_CHARS}&=+$,;?/]++|{ESCAPED})++"
_FAST_PASSWORD = rf"(?:[{UNRESERVED_CHARS}&=+$,]++|{ESCAPED})*+"
_FAST_PARAMCHARS = rf"(?:[\[\]/:&+${UNRESERVED_CHARS}]++|{ESCAPED})++"
#: domainlabel and toplabel as alnum runs joined by hyphen runs (RFC 3261 §25.1).
_FAST_HOSTNAME = (
    r"(?:[A-Za-z0-9]++(?:-++[A-Za-z0-9]++)*+\.)*[A-Za-z][A-Za-z0-9]*+(?:-++[A-Za-z0-9]++)*+\.?"
)
_FAST_HOST = rf"{IPV4ADDRESS}(?![A-Za-z0-9.\-])|{_FAST_HOSTNAME}"
_FAST_TOKEN_PARAMS = rf"(?:[ \t]*;[ \t]*{_FAST_TOKEN}(?:[ \t]*=[ \t]*{_FAST_TOKEN})?)*+[ \t]*"
_FAST_DISPLAY = rf'"(?P<quoted>{QDTEXT}*+)"[ \t]*|(?P<tokens>{TOKEN}(?:[ \t]+{TOKEN})*)[ \t]*'

#: sip:/sips: URI: scheme, [user[:password]@], hostname or IPv4, [:port], *(;param).
FAST_SIP_URI = (
    rf"(?P<scheme>{_ci('sip')}[Ss]?):"
    rf"(?:(?P<user>{_FAST_USER})(?::(?P<password>{_FAST_PASSWORD}))?@)?"
    rf"(?P<host>{_FAST_HOST})(?::(?P<port>{FAST_PORT}))?"
    rf"(?P<uparams>(?:;{_FAST_PARAMCHARS}(?:={_FAST_PARAMCHARS})?)*+)"
)

#: ``[display] <sip-uri> *(;token[=token])``: the To and From every peer sends.
FAST_NAME_ADDR = rf"[ \t]*(?:{_FAST_DISPLAY})?<{FAST_SIP_URI}>(?P<params>{_FAST_TOKEN_PARAMS})"

#: The same, with quoted-string parameter values too (Contact's +sip.instance):
#: only ever used to validate, never to build.
FAST_CONTACT = (
    rf"[ \t]*(?:{_FAST_DISPLAY})?<{FAST_SIP_URI}>"
    rf"(?:[ \t]*;[ \t]*{_FAST_TOKEN}(?:[ \t]*=[ \t]*(?:{_FAST_TOKEN}|{QUOTED_STRING}))?)*+[ \t]*"
)

#: One Via param: branch a token, received an IPv4 address, rport digits, any
#: other name a token with an optional token value (RFC 3261 §20.42, RFC 3581).
_FAST_VIA_PARAM = (
    rf"(?!(?:{_ci('branch')}|{_ci('received')}|{_ci('rport')})(?:[=;]|\Z))"
    rf"{_FAST_TOKEN}(?:={_FAST_TOKEN})?"
    rf"|{_ci('branch')}={_FAST_TOKEN}"
    rf"|{_ci('received')}={IPV4ADDRESS}(?![A-Za-z0-9\-.!%*_+`'~])"
    rf"|{_ci('rport')}(?:=[0-9]{{1,5}})?"
)

#: ``SIP/2.0/transport host[:port]*(;param)``, one via, single spaces only.
FAST_VIA = (
    rf"SIP/2\.0/(?P<transport>{_FAST_TOKEN}) (?P<host>{_FAST_HOST})"
    rf"(?::(?P<port>{FAST_PORT}))?(?P<params>(?:;(?:{_FAST_VIA_PARAM}))*+)"
)

#: ``method SP sip-uri SP SIP/2.0``: the Request-Line of every request we expect.
FAST_REQUEST_LINE = rf"(?P<method>{_FAST_TOKEN}) (?P<uri>{FAST_SIP_URI}) SIP/2\.0"

#: ``1*9DIGIT SP method``: a CSeq number that cannot be over 2**32-1.
FAST_CSEQ = rf"(?P<number>[0-9]{{1,9}}) (?P<method>{_FAST_TOKEN})"

FAST_SIP_URI_RE = re.compile(FAST_SIP_URI)
FAST_REQUEST_LINE_RE = re.compile(FAST_REQUEST_LINE)
FAST_CSEQ_RE = re.compile(FAST_CSEQ)
FAST_NAME_ADDR_RE = re.compile(FAST_NAME_ADDR)
FAST_CONTACT_RE = re.compile(FAST_CONTACT)
FAST_VIA_RE = re.compile(FAST_VIA)
