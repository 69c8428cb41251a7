#!/bin/sh
# Prints a Cognito ID token for one user of the stack's user pool, creating
# the user on first use. It is loadgen's --token-command for a deployed
# stage: loadgen passes the user as GROUPCAST_SUB (environment, never shell
# text); a user id given as $1 wins.
#
#   COGNITO_USER_POOL_ID=eu-west-1_abc COGNITO_CLIENT_ID=123abc \
#   GROUPCAST_PASSWORD='a long test password' cmd/cognito-token/cognito-token.sh alice
#
# The HTTP API's JWT authorizer checks aud, which only ID tokens carry (an
# access token has client_id and no aud), so this prints the IdToken.
# Users are named <id>@$COGNITO_EMAIL_DOMAIN (the pool signs in by email)
# and created with admin-create-user --message-action SUPPRESS, so no email
# is sent. Needs the AWS CLI and credentials allowed cognito-idp:AdminGetUser,
# AdminCreateUser and AdminSetUserPassword on the pool.
set -eu

die() { echo "cognito-token: $*" >&2; exit 2; }

user=${1:-${GROUPCAST_SUB:-}}
[ -n "$user" ] || die "usage: $0 USER (or set GROUPCAST_SUB)"
[ $# -le 1 ] || die "usage: $0 USER (one user, got $#)"
case $user in
	*[!A-Za-z0-9._-]*) die "user $user: use letters, digits, '.', '_' or '-' only" ;;
esac
: "${COGNITO_USER_POOL_ID:?cognito-token: set COGNITO_USER_POOL_ID (stack output UserPoolId)}"
: "${COGNITO_CLIENT_ID:?cognito-token: set COGNITO_CLIENT_ID (stack output UserPoolClientId)}"
: "${GROUPCAST_PASSWORD:?cognito-token: set GROUPCAST_PASSWORD (the password test users get)}"
case $GROUPCAST_PASSWORD in
	*,*) die "GROUPCAST_PASSWORD must not contain ',' (the AWS CLI's --auth-parameters shorthand splits on it)" ;;
esac
email="$user@${COGNITO_EMAIL_DOMAIN:-example.com}"
aws=${AWS_CLI:-aws}

if ! "$aws" cognito-idp admin-get-user --user-pool-id "$COGNITO_USER_POOL_ID" --username "$email" >/dev/null 2>&1; then
	"$aws" cognito-idp admin-create-user --user-pool-id "$COGNITO_USER_POOL_ID" --username "$email" \
		--user-attributes Name=email,Value="$email" Name=email_verified,Value=true Name=name,Value="${GROUPCAST_NAME:-$user}" \
		--message-action SUPPRESS >/dev/null
	# --permanent skips the FORCE_CHANGE_PASSWORD challenge.
	"$aws" cognito-idp admin-set-user-password --user-pool-id "$COGNITO_USER_POOL_ID" --username "$email" \
		--password "$GROUPCAST_PASSWORD" --permanent >/dev/null
fi
"$aws" cognito-idp initiate-auth --client-id "$COGNITO_CLIENT_ID" --auth-flow USER_PASSWORD_AUTH \
	--auth-parameters USERNAME="$email",PASSWORD="$GROUPCAST_PASSWORD" \
	--query AuthenticationResult.IdToken --output text
