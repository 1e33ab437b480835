// verdict: the first-reply decision shared by the proxy's access log and `linesman replay`.
#include "tls/verdict.hpp"

#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace linesman::tls {
namespace {

detection reply(std::string_view s) {
  const std::vector<std::uint8_t> b(s.begin(), s.end());
  return detect_first_flight(b, direction::server_to_client);
}

TEST(Verdict, RefusalsByProtocol) {
  EXPECT_TRUE(is_refusal(reply("554 5.7.1 no relay here\r\n")));
  EXPECT_TRUE(is_refusal(reply("421-busy\r\n")));
  // "-ERR" alone is not detected as POP3 (Redis says it too), so the POP3 rule is checked on a
  // detection that already names the protocol.
  detection pop3;
  pop3.proto = protocol::pop3;
  pop3.summary.append("-ERR go away");
  EXPECT_TRUE(is_refusal(pop3));
  EXPECT_TRUE(is_refusal(reply("* BYE too many connections\r\n")));
  EXPECT_FALSE(is_refusal(reply("220 mail.example ESMTP ready\r\n")));
  EXPECT_FALSE(is_refusal(reply("+OK POP3 ready\r\n")));
  EXPECT_FALSE(is_refusal(reply("* OK IMAP4rev1 ready\r\n")));
  EXPECT_FALSE(is_refusal(reply("HTTP/1.1 200 OK\r\n\r\n")));
  EXPECT_FALSE(is_refusal(detection{}));
}

TEST(Verdict, ClientSentTlsOnlyForAWholeOrOversizedHello) {
  EXPECT_TRUE(client_sent_tls(true, false));
  EXPECT_TRUE(client_sent_tls(false, true));
  EXPECT_FALSE(client_sent_tls(false, false));  // a lone 0x16 echoed back is not upstream_not_tls
}

TEST(Verdict, ClassifyFirstReply) {
  const detection http = reply("HTTP/1.1 400 Bad Request\r\n\r\n");
  const detection smtp_no = reply("554 no\r\n");
  // An alert wins over everything, whatever the client sent.
  EXPECT_EQ(classify_first_reply(server_status::complete, true, true, http),
            first_reply::tls_alert);
  EXPECT_EQ(classify_first_reply(server_status::not_tls, true, false, http),
            first_reply::tls_alert);
  for (auto st : {server_status::complete, server_status::incomplete, server_status::malformed,
                  server_status::too_large}) {
    EXPECT_EQ(classify_first_reply(st, false, true, http), first_reply::tls);
  }
  EXPECT_EQ(classify_first_reply(server_status::not_tls, false, true, http), first_reply::not_tls);
  EXPECT_EQ(classify_first_reply(server_status::not_tls, false, true, smtp_no),
            first_reply::not_tls);
  EXPECT_EQ(classify_first_reply(server_status::not_tls, false, false, smtp_no),
            first_reply::refusal);
  EXPECT_EQ(classify_first_reply(server_status::not_tls, false, false, http),
            first_reply::plaintext);
}

}  // namespace
}  // namespace linesman::tls
