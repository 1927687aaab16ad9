"""Attach, detach, delete and DeleteOnTermination as EC2 does them (DOMAIN.md §3)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from mypy_boto3_ec2 import EC2Client

from .conftest import Net, error_code, error_message, run_instance


def _eni(ec2: EC2Client, subnet_id: str) -> str:
    return ec2.create_network_interface(SubnetId=subnet_id)["NetworkInterface"]["NetworkInterfaceId"]


def _describe(ec2: EC2Client, eni_id: str) -> dict[str, object]:
    return dict(ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"][0])


@pytest.mark.parametrize("device_index", [0, 1])
def test_given_an_occupied_device_index_when_attaching_there_then_invalid_parameter_value(
    ec2: EC2Client, net: Net, device_index: int
) -> None:
    # AWS: InvalidParameterValue "Instance '...' already has an interface attached at device index 'N'."
    # (index 0 holds the primary interface from launch).
    instance_id = run_instance(ec2, net.subnet_id)
    if device_index:
        ec2.attach_network_interface(NetworkInterfaceId=_eni(ec2, net.subnet_id), InstanceId=instance_id, DeviceIndex=1)

    with pytest.raises(ClientError) as excinfo:
        ec2.attach_network_interface(
            NetworkInterfaceId=_eni(ec2, net.subnet_id), InstanceId=instance_id, DeviceIndex=device_index
        )

    assert error_code(excinfo) == "InvalidParameterValue"
    assert error_message(excinfo) == (
        f"Instance '{instance_id}' already has an interface attached at device index '{device_index}'."
    )


def test_given_an_eni_in_another_az_when_attached_then_the_attach_is_refused(ec2: EC2Client, net: Net) -> None:
    # AWS: an ENI and its instance must share an AZ. Code assumed InvalidParameterCombination (unconfirmed).
    instance_id = run_instance(ec2, net.subnet_id)

    with pytest.raises(ClientError) as excinfo:
        ec2.attach_network_interface(
            NetworkInterfaceId=_eni(ec2, net.other_az_subnet_id), InstanceId=instance_id, DeviceIndex=1
        )

    assert error_code(excinfo) == "InvalidParameterCombination"


def test_given_an_attached_eni_when_attached_again_then_invalid_network_interface_in_use(
    ec2: EC2Client, net: Net
) -> None:
    # AWS: InvalidNetworkInterface.InUse — an interface attaches to one instance at a time.
    first, second = run_instance(ec2, net.subnet_id), run_instance(ec2, net.subnet_id)
    eni_id = _eni(ec2, net.subnet_id)
    ec2.attach_network_interface(NetworkInterfaceId=eni_id, InstanceId=first, DeviceIndex=1)

    with pytest.raises(ClientError) as excinfo:
        ec2.attach_network_interface(NetworkInterfaceId=eni_id, InstanceId=second, DeviceIndex=1)

    assert error_code(excinfo) == "InvalidNetworkInterface.InUse"


def test_given_the_instance_types_eni_limit_when_one_more_is_attached_then_attachment_limit_exceeded(
    ec2: EC2Client, net: Net
) -> None:
    # AWS: AttachmentLimitExceeded — an m5.large takes 3 interfaces (DescribeInstanceTypes NetworkInfo).
    instance_id = run_instance(ec2, net.subnet_id, "m5.large")
    for index in (1, 2):
        ec2.attach_network_interface(
            NetworkInterfaceId=_eni(ec2, net.subnet_id), InstanceId=instance_id, DeviceIndex=index
        )

    with pytest.raises(ClientError) as excinfo:
        ec2.attach_network_interface(NetworkInterfaceId=_eni(ec2, net.subnet_id), InstanceId=instance_id, DeviceIndex=3)

    assert error_code(excinfo) == "AttachmentLimitExceeded"


def test_given_two_network_cards_when_attaching_the_same_index_on_each_then_both_keep_their_card_index(
    ec2: EC2Client, net: Net
) -> None:
    # AWS: device indexes are per network card; NetworkCardIndex is recorded in the attachment.
    instance_id = run_instance(ec2, net.subnet_id, "c6in.32xlarge")
    on_card_0, on_card_1 = _eni(ec2, net.subnet_id), _eni(ec2, net.subnet_id)
    ec2.attach_network_interface(NetworkInterfaceId=on_card_0, InstanceId=instance_id, DeviceIndex=1)
    ec2.attach_network_interface(
        NetworkInterfaceId=on_card_1, InstanceId=instance_id, DeviceIndex=1, NetworkCardIndex=1
    )

    attachments = {
        eni["NetworkInterfaceId"]: eni["Attachment"]
        for eni in ec2.describe_network_interfaces(
            Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}]
        )["NetworkInterfaces"]
    }
    assert attachments[on_card_0]["NetworkCardIndex"] == 0
    assert attachments[on_card_1]["NetworkCardIndex"] == 1
    assert attachments[on_card_1]["DeviceIndex"] == 1


def test_given_an_attached_eni_when_deleted_then_invalid_network_interface_in_use(ec2: EC2Client, net: Net) -> None:
    # AWS: InvalidNetworkInterface.InUse — detach first.
    instance_id = run_instance(ec2, net.subnet_id)
    eni_id = _eni(ec2, net.subnet_id)
    ec2.attach_network_interface(NetworkInterfaceId=eni_id, InstanceId=instance_id, DeviceIndex=1)

    with pytest.raises(ClientError) as excinfo:
        ec2.delete_network_interface(NetworkInterfaceId=eni_id)

    assert error_code(excinfo) == "InvalidNetworkInterface.InUse"


def test_given_a_missing_eni_when_deleted_then_invalid_network_interface_id_not_found(ec2: EC2Client, net: Net) -> None:
    # AWS: InvalidNetworkInterfaceID.NotFound (moto does this already; the second delete of a retried cleanup).
    eni_id = _eni(ec2, net.subnet_id)
    ec2.delete_network_interface(NetworkInterfaceId=eni_id)

    with pytest.raises(ClientError) as excinfo:
        ec2.delete_network_interface(NetworkInterfaceId=eni_id)

    assert error_code(excinfo) == "InvalidNetworkInterfaceID.NotFound"


def test_given_an_attachment_when_delete_on_termination_is_modified_then_describe_returns_it(
    ec2: EC2Client, net: Net
) -> None:
    # AWS: AttachNetworkInterface leaves DeleteOnTermination false; ModifyNetworkInterfaceAttribute sets it.
    instance_id = run_instance(ec2, net.subnet_id)
    eni_id = _eni(ec2, net.subnet_id)
    attachment_id = ec2.attach_network_interface(NetworkInterfaceId=eni_id, InstanceId=instance_id, DeviceIndex=1)[
        "AttachmentId"
    ]

    ec2.modify_network_interface_attribute(
        NetworkInterfaceId=eni_id, Attachment={"AttachmentId": attachment_id, "DeleteOnTermination": True}
    )

    attachment = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"][0]["Attachment"]
    assert attachment["DeleteOnTermination"] is True


def test_given_a_foreign_attachment_id_when_modifying_delete_on_termination_then_invalid_attachment_id(
    ec2: EC2Client, net: Net
) -> None:
    # AWS: InvalidAttachmentID.NotFound — the attachment must be this interface's.
    instance_id = run_instance(ec2, net.subnet_id)
    eni_id = _eni(ec2, net.subnet_id)
    ec2.attach_network_interface(NetworkInterfaceId=eni_id, InstanceId=instance_id, DeviceIndex=1)

    with pytest.raises(ClientError) as excinfo:
        ec2.modify_network_interface_attribute(
            NetworkInterfaceId=eni_id,
            Attachment={"AttachmentId": "eni-attach-0000000000000000", "DeleteOnTermination": True},
        )

    assert error_code(excinfo) == "InvalidAttachmentID.NotFound"


def test_given_source_dest_check_disabled_when_described_then_it_is_false(ec2: EC2Client, net: Net) -> None:
    # AWS: SourceDestCheck is its own ModifyNetworkInterfaceAttribute call (moto does this already).
    eni_id = _eni(ec2, net.subnet_id)

    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni_id, SourceDestCheck={"Value": False})

    assert _describe(ec2, eni_id)["SourceDestCheck"] is False


def test_given_enis_with_and_without_delete_on_termination_when_the_instance_terminates_then_only_one_is_left(
    ec2: EC2Client, net: Net
) -> None:
    # AWS: termination deletes interfaces with DeleteOnTermination (the launch's primary has it) and detaches
    # the others, which stay `available` — that is how a leaked ENI shows.
    instance_id = run_instance(ec2, net.subnet_id)
    primary_id = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0][
        "NetworkInterfaces"
    ][0]["NetworkInterfaceId"]
    kept, deleted = _eni(ec2, net.subnet_id), _eni(ec2, net.subnet_id)
    ec2.attach_network_interface(NetworkInterfaceId=kept, InstanceId=instance_id, DeviceIndex=1)
    attachment = ec2.attach_network_interface(NetworkInterfaceId=deleted, InstanceId=instance_id, DeviceIndex=2)
    ec2.modify_network_interface_attribute(
        NetworkInterfaceId=deleted,
        Attachment={"AttachmentId": attachment["AttachmentId"], "DeleteOnTermination": True},
    )

    ec2.terminate_instances(InstanceIds=[instance_id])

    remaining = {eni["NetworkInterfaceId"]: eni for eni in ec2.describe_network_interfaces()["NetworkInterfaces"]}
    assert set(remaining) == {kept}
    assert remaining[kept]["Status"] == "available"
    assert "Attachment" not in remaining[kept]
    assert primary_id not in remaining
